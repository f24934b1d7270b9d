/** What the feature services get from the app controller. */
import type { ParleyClient } from '@parley/sdk';
import type { Store } from '../createStore';
import type { Action, AppState } from '../store';

export interface FeatureContext {
  client: ParleyClient;
  store: Store<AppState, Action>;
  /** Loads the profiles not known yet (the controller's, which remembers what it asked for). */
  ensureUsers(ids: string[]): Promise<void>;
  /** `GET /chats` into the store. */
  loadChats(): Promise<void>;
  /** `GET /chats/{id}` into the store, then its members' profiles. */
  loadDetail(chatId: string): Promise<void>;
  now(): number;
}

/** The signed-in user's id (empty when signed out). */
export function myId(context: FeatureContext): string {
  return context.store.getState().auth.userId ?? '';
}
