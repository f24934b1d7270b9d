/**
 * Your profile: display name, status and picture (`PUT /users/{id}`). A picture is uploaded as
 * it is shown (`POST /media` with its image type) and then set as `avatar_media_id`; profile
 * pictures, names and statuses are readable by every signed-in user, i.e. not end-to-end
 * encrypted. Registration takes no picture (it needs an account to upload it), so one chosen at
 * sign-up is set right after.
 */
import { uploadMedia, type UserView } from '@parley/sdk';
import { call } from './apiError';
import { myId, type FeatureContext } from './context';
import type { UpdateUserRequest } from './types';

/** The api's limits (`domain/src/user.rs`). */
export const NAME_MAX_CHARS = 64;
export const STATUS_MAX_CHARS = 140;
/** Pictures the browser can decode and the api serves inline. */
export const AVATAR_INPUT_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif'] as const;
/** The file picked, before it is scaled down. */
export const AVATAR_INPUT_MAX_BYTES = 20 * 1024 * 1024;
/** Longest side of the uploaded picture, in pixels. */
export const AVATAR_SIZE_PX = 512;

// The api refuses control characters (Unicode category Cc).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** `null` when the api would accept the name, else why not. */
export function validateName(name: string): string | null {
  const trimmed = name.trim();
  if (!trimmed) return 'Enter a name.';
  if ([...trimmed].length > NAME_MAX_CHARS) return `Use at most ${NAME_MAX_CHARS} characters.`;
  if (CONTROL.test(trimmed)) return 'The name contains characters that are not allowed.';
  return null;
}

export function validateStatus(status: string): string | null {
  if ([...status.trim()].length > STATUS_MAX_CHARS) {
    return `Use at most ${STATUS_MAX_CHARS} characters.`;
  }
  if (CONTROL.test(status.trim())) return 'The status contains characters that are not allowed.';
  return null;
}

/** `null` when the file may become a profile picture, else why not. */
export function validateAvatarFile(file: Pick<Blob, 'type' | 'size'>): string | null {
  if (!(AVATAR_INPUT_TYPES as readonly string[]).includes(file.type)) {
    return 'Choose a JPEG, PNG, WebP or GIF image.';
  }
  if (file.size === 0) return 'That file is empty.';
  if (file.size > AVATAR_INPUT_MAX_BYTES) return 'Choose an image smaller than 20 MB.';
  return null;
}

/** Width and height scaled to fit in `max`×`max`, never enlarged, at least 1 px. */
export function fitWithin(
  width: number,
  height: number,
  max = AVATAR_SIZE_PX,
): { width: number; height: number } {
  if (width <= 0 || height <= 0) return { width: 1, height: 1 };
  const scale = Math.min(1, max / Math.max(width, height));
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

/** Turns the picked file into what is uploaded (the browser scales and re-encodes it). */
export type PrepareImage = (file: Blob) => Promise<Blob>;

export class Profile {
  constructor(
    private readonly context: FeatureContext,
    private readonly prepareImage: PrepareImage,
  ) {}

  private async update(body: UpdateUserRequest): Promise<UserView> {
    const id = myId(this.context);
    const user = await call(() =>
      this.context.client.PUT('/users/{id}', { params: { path: { id } }, body }),
    );
    this.context.store.dispatch({ type: 'users/loaded', users: [user] });
    return user;
  }

  /** Changes name and status (only what differs from the current profile is sent). */
  async save(name: string, status: string): Promise<void> {
    const problem = validateName(name) ?? validateStatus(status);
    if (problem) throw new Error(problem);
    const current = this.context.store.getState().users[myId(this.context)];
    const body: UpdateUserRequest = {};
    if (name.trim() !== current?.name) body.name = name.trim();
    if (status.trim() !== (current?.status ?? '')) body.status = status.trim();
    if (Object.keys(body).length > 0) await this.update(body);
  }

  /** Uploads the picture and makes it yours. */
  async setAvatar(file: Blob): Promise<void> {
    const problem = validateAvatarFile(file);
    if (problem) throw new Error(problem);
    const image = await this.prepareImage(file);
    const media = await call(
      () => uploadMedia(this.context.client, image, image.type || file.type),
      {
        413: 'That picture is too large for the server.',
      },
    );
    await this.update({ avatar_media_id: media.id });
  }

  async removeAvatar(): Promise<void> {
    await this.update({ avatar_media_id: null });
  }

  /** After registering with a picture: sets it, or says (app-wide) why it could not. */
  async setAvatarAfterSignUp(file: Blob): Promise<void> {
    try {
      await this.setAvatar(file);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.context.store.dispatch({
        type: 'banner/set',
        banner: `Your account is ready, but the profile picture could not be set: ${reason} You can set it again under Profile.`,
      });
    }
  }
}
