/** What the feature services get from the app controller. */
import type { DeviceRef, ParleyClient } from '@parley/sdk';
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
  /** What safety numbers need of the end-to-end encryption (`lib/e2ee.ts`, `lib/crypto.ts`). */
  safety: SafetySource;
}

export interface SafetySource {
  /** Resolves once this device's crypto state is open (rejects when it cannot be). */
  ready(): Promise<void>;
  /** Re-reads these users' device lists into the trust store. */
  syncDevices(userIds: string[]): Promise<void>;
  /** The devices last listed for the user. */
  listedDevices(userId: string): Promise<DeviceRef[]>;
  /** The core's `Device.safetyNumber`: 60 digits in 12 groups of 5. */
  safetyNumber(otherUserId: string): Promise<string>;
}

/** The signed-in user's id (empty when signed out). */
export function myId(context: FeatureContext): string {
  return context.store.getState().auth.userId ?? '';
}
