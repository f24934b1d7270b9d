import type { components } from './schema';

type Schemas = components['schemas'];

export type AuthSession = Schemas['AuthSession'];
export type TokenPair = Schemas['TokenPair'];
export type UserView = Schemas['UserView'];
export type UserPage = Schemas['UserPage'];
export type ChatType = Schemas['ChatType'];
export type ChatSummary = Schemas['ChatSummary'];
export type ChatPage = Schemas['ChatPage'];
export type ChatView = Schemas['ChatView'];
export type MemberView = Schemas['MemberView'];
export type MessageView = Schemas['MessageView'];
export type MessagePage = Schemas['MessagePage'];
export type SendMessageRequest = Schemas['SendMessageRequest'];
export type CreateChatRequest = Schemas['CreateChatRequest'];
export type MediaView = Schemas['MediaView'];
export type UploadSession = Schemas['UploadSession'];
export type NotificationView = Schemas['NotificationView'];
export type CallView = Schemas['CallView'];
export type ErrorBody = Schemas['ErrorBody'];
export type ErrorDetail = Schemas['ErrorDetail'];
export type PublishKeysRequest = Schemas['PublishKeysRequest'];
export type PublishKeysResponse = Schemas['PublishKeysResponse'];
export type IdentityKeysBody = Schemas['IdentityKeysBody'];
export type OneTimeKeyBody = Schemas['OneTimeKeyBody'];
export type UserDevices = Schemas['UserDevices'];
export type DeviceKeys = Schemas['DeviceKeys'];
export type DeviceRef = Schemas['DeviceRef'];
export type ClaimedKey = Schemas['ClaimedKey'];
export type OutgoingToDevice = Schemas['OutgoingToDevice'];
export type ToDeviceMessageView = Schemas['ToDeviceMessageView'];

/** The `{"error": {"code", "message"}}` body of a failed request, or a stand-in when there is none. */
export function errorDetail(error: unknown, status?: number): ErrorDetail {
  if (error && typeof error === 'object' && 'error' in error) {
    const inner = (error as { error: unknown }).error;
    if (inner && typeof inner === 'object' && 'code' in inner && 'message' in inner) {
      const { code, message } = inner as { code: unknown; message: unknown };
      if (typeof code === 'string' && typeof message === 'string') {
        return { code, message };
      }
    }
  }
  return {
    code: 'http_error',
    message: status ? `request failed with status ${status}` : 'request failed',
  };
}
