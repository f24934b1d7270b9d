/**
 * The everyday features beside chatting — profile, groups, deleting messages, notifications,
 * devices and safety numbers — as one object the app controller owns (`controller.features`).
 * It watches the store for the moments it acts on by itself: the socket (re)opened (reload the
 * notifications), a chat came on screen (its notifications are seen), signed out (release the
 * pictures).
 */
import type { FeatureContext } from './context';
import { Avatars, type ObjectUrls } from './avatars';
import { Devices } from './devices';
import { Groups } from './groups';
import { shrinkImage } from './image';
import { MessageDeletion } from './messages';
import { Notifications } from './notifications';
import { Profile, type PrepareImage } from './profile';

export interface FeatureOptions {
  /** Scales and re-encodes a picked picture (defaults to the browser's canvas). */
  prepareImage?: PrepareImage;
  objectUrls?: ObjectUrls;
}

export class Features {
  readonly notifications: Notifications;
  readonly avatars: Avatars;
  readonly groups: Groups;
  readonly profile: Profile;
  readonly devices: Devices;
  readonly messages: MessageDeletion;
  private readonly unsubscribe: () => void;

  constructor(context: FeatureContext, options: FeatureOptions = {}) {
    this.notifications = new Notifications(context);
    this.avatars = new Avatars(context, options.objectUrls);
    this.groups = new Groups(context);
    this.profile = new Profile(context, options.prepareImage ?? shrinkImage);
    this.devices = new Devices(context);
    this.messages = new MessageDeletion(context);

    let previous = context.store.getState();
    this.unsubscribe = context.store.subscribe(() => {
      const state = context.store.getState();
      const before = previous;
      previous = state;
      if (state.auth.status !== 'signed_in') {
        if (before.auth.status === 'signed_in') this.avatars.clear();
        return;
      }
      if (state.connection === 'open' && before.connection !== 'open') {
        void this.notifications.load();
      }
      const open = state.openChatId;
      if (open && (open !== before.openChatId || state.notifications !== before.notifications)) {
        void this.notifications.chatOpened(open);
      }
    });
  }

  dispose(): void {
    this.unsubscribe();
    this.avatars.clear();
  }
}
