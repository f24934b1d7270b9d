/** API shapes the features use that the SDK does not name (yet). */
import type { components } from '@parley/sdk';

type Schemas = components['schemas'];

export type InviteView = Schemas['InviteView'];
export type OwnDevice = Schemas['OwnDevice'];
export type UpdateUserRequest = Schemas['UpdateUserRequest'];
