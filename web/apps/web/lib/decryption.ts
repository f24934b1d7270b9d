/**
 * Decrypting messages for display, and the wait for room keys that have not arrived.
 *
 * A sender shares a chat's room key (to-device, Olm) before it posts the message, but the two
 * reach this device on different paths: a message can show up before its key. Such a message
 * shows as `waiting`; the to-device queue is read (`GET /to-device`), the message retried, and
 * once more after {@link KEY_RECHECK_MS}. Only then is it `error` ("cannot decrypt"), and even
 * that is retried if a room key for its chat arrives later.
 */
import type { MessageView } from '@parley/sdk';
import { cryptoErrorCode, type CryptoCore, type MessageContent } from './crypto';
import type { Timers } from './session';
import type { Body } from './store';

/** The second look for a missing room key comes this long after the first. */
export const KEY_RECHECK_MS = 3000;

export const REPLAY_REASON =
  'This message repeats an earlier one under another id (a replay): it is not shown.';

export const MISSING_KEY_REASON =
  'The key for this message did not reach this device (it was not shared with it).';

export interface DecryptionOptions {
  crypto: CryptoCore;
  /** Resolves once this device is open; rejects with the reason it is not. */
  ready: () => Promise<void>;
  /** Takes the waiting to-device messages (room keys). */
  drain: () => Promise<void>;
  setBodies: (bodies: Record<string, Body>) => void;
  timers: Timers;
}

/** What a decrypted (or just sent) message shows. */
export function bodyOf(content: MessageContent): Body {
  if (content.type === 'text') return { status: 'ok', text: content.body };
  return {
    status: 'ok',
    text: content.body ?? '',
    file: content.file,
    ...(content.thumbnail ? { thumbnail: content.thumbnail } : {}),
  };
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class MessageDecryption {
  private readonly inFlight = new Set<string>();
  /** Messages whose room key was missing, by id. */
  private readonly missing = new Map<string, MessageView>();
  /** Of those, the ones given up on (shown as `error`). */
  private readonly givenUp = new Set<string>();
  /** `chat/session/index` → the message that has it (the earliest by `seq`; replays reuse it). */
  private readonly indexes = new Map<string, { id: string; seq: number }>();
  private checking = false;
  private checkAgain = false;
  private generation = 0;
  /** Chats whose room keys arrived since the last retry of their waiting messages. */
  private readonly keyedChats = new Set<string>();
  private retryScheduled = false;
  /** Messages found to repeat an earlier one after they were decrypted. */
  private readonly replayed = new Set<string>();

  constructor(private readonly options: DecryptionOptions) {}

  /**
   * Decrypts messages whose body is not known yet (or failed); deleted ones show as such. The
   * bodies of one call reach the store in one update: a page of 50 is one render, not 50.
   */
  decrypt(messages: MessageView[], known: (id: string) => Body | undefined): void {
    const generation = this.generation;
    void this.bodiesFor(messages, known).then((bodies) => {
      if (generation === this.generation) this.publish(bodies);
    });
  }

  /**
   * The bodies of `messages` (as {@link decrypt}), returned rather than stored: the caller puts
   * them in the store together with the page they belong to. Messages already being decrypted
   * are left out (their own call stores them).
   */
  async bodiesFor(
    messages: MessageView[],
    known: (id: string) => Body | undefined,
  ): Promise<Record<string, Body>> {
    const generation = this.generation;
    const bodies: Record<string, Body> = {};
    const decrypting: Promise<void>[] = [];
    for (const message of messages) {
      if (message.deleted || message.ciphertext == null) {
        if (message.deleted) bodies[message.id] = { status: 'deleted' };
        this.missing.delete(message.id);
        continue;
      }
      const body = known(message.id);
      if (body?.status === 'ok' || body?.status === 'deleted') continue;
      decrypting.push(
        this.decryptOne(message, true).then((decrypted) => {
          if (decrypted) bodies[message.id] = decrypted;
        }),
      );
    }
    await Promise.all(decrypting);
    return generation === this.generation ? this.withReplays(bodies) : {};
  }

  /**
   * A room key for `chatId` arrived: its messages that lacked one are tried again, once for all
   * the keys that arrive together (a backlog of room keys comes as many frames at once).
   */
  roomKeyArrived(chatId: string): void {
    this.keyedChats.add(chatId);
    if (this.retryScheduled) return;
    this.retryScheduled = true;
    this.options.timers.setTimeout(() => {
      this.retryScheduled = false;
      const chats = new Set(this.keyedChats);
      this.keyedChats.clear();
      const retried = [...this.missing.values()].filter((message) => chats.has(message.chat_id));
      void this.retryMessages(retried);
    }, 0);
  }

  /** Signed out: forget everything. */
  reset(): void {
    this.generation += 1;
    this.inFlight.clear();
    this.missing.clear();
    this.givenUp.clear();
    this.indexes.clear();
    this.checking = false;
    this.checkAgain = false;
    this.keyedChats.clear();
    this.replayed.clear();
  }

  private publish(bodies: Record<string, Body>) {
    if (Object.keys(bodies).length > 0) this.options.setBodies(bodies);
  }

  /** The message's body, or `null` when it is being decrypted already or the user signed out. */
  private async decryptOne(message: MessageView, scheduleCheck: boolean): Promise<Body | null> {
    if (this.inFlight.has(message.id)) return null;
    const generation = this.generation;
    this.inFlight.add(message.id);
    let body: Body;
    try {
      await this.options.ready();
      const decrypted = await this.options.crypto.decryptMessage(message);
      const { content } = decrypted;
      const index = `${message.chat_id}/${decrypted.session_id}/${decrypted.message_index}`;
      const holder = this.indexes.get(index);
      if (holder && holder.id !== message.id && holder.seq <= message.seq) {
        body = { status: 'error', reason: REPLAY_REASON };
      } else {
        if (holder && holder.id !== message.id && generation === this.generation) {
          // This one came first: the one seen before is the copy.
          this.replayed.add(holder.id);
          this.options.setBodies({ [holder.id]: { status: 'error', reason: REPLAY_REASON } });
        }
        this.indexes.set(index, { id: message.id, seq: message.seq });
        body = bodyOf(content);
      }
      this.missing.delete(message.id);
      this.givenUp.delete(message.id);
    } catch (error) {
      if (cryptoErrorCode(error) === 'missing_room_key') {
        this.missing.set(message.id, message);
        if (this.givenUp.has(message.id)) {
          body = { status: 'error', reason: MISSING_KEY_REASON };
        } else {
          body = { status: 'waiting' };
          if (scheduleCheck) this.scheduleCheck();
        }
      } else {
        body = { status: 'error', reason: reasonOf(error) };
      }
    } finally {
      this.inFlight.delete(message.id);
    }
    return generation === this.generation ? body : null;
  }

  private waitingIds(): string[] {
    return [...this.missing.keys()].filter((id) => !this.givenUp.has(id));
  }

  private async retry(ids: string[]): Promise<void> {
    await this.retryMessages(
      ids.flatMap((id) => {
        const message = this.missing.get(id);
        return message ? [message] : [];
      }),
    );
  }

  /** Decrypts these again (no new check is scheduled) and stores their bodies in one update. */
  private async retryMessages(messages: MessageView[]): Promise<void> {
    const generation = this.generation;
    const bodies: Record<string, Body> = {};
    await Promise.all(
      messages.map(async (message) => {
        const body = await this.decryptOne(message, false);
        if (body) bodies[message.id] = body;
      }),
    );
    if (generation === this.generation) this.publish(this.withReplays(bodies));
  }

  /**
   * A batch's bodies with those found to be replays since they were decrypted marked so: in a
   * batch, the original can be decrypted after its copy.
   */
  private withReplays(bodies: Record<string, Body>): Record<string, Body> {
    for (const id of Object.keys(bodies)) {
      if (this.replayed.has(id)) bodies[id] = { status: 'error', reason: REPLAY_REASON };
    }
    return bodies;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.options.timers.setTimeout(resolve, ms));
  }

  /** Reads the to-device queue and retries, twice, then gives up on what still lacks a key. */
  private scheduleCheck(): void {
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    const generation = this.generation;
    void (async () => {
      do {
        this.checkAgain = false;
        const round = this.waitingIds();
        await this.options.drain().catch(() => undefined);
        await this.retry(round);
        if (this.waitingIds().length === 0) continue;
        await this.sleep(KEY_RECHECK_MS);
        if (generation !== this.generation) return;
        await this.options.drain().catch(() => undefined);
        await this.retry(this.waitingIds());
        const stillMissing = round.filter((id) => this.missing.has(id));
        for (const id of stillMissing) this.givenUp.add(id);
        if (generation !== this.generation) return;
        if (stillMissing.length > 0) {
          this.options.setBodies(
            Object.fromEntries(
              stillMissing.map((id) => [id, { status: 'error', reason: MISSING_KEY_REASON }]),
            ),
          );
        }
        if (this.waitingIds().length > 0) this.checkAgain = true;
      } while (this.checkAgain && generation === this.generation);
      if (generation === this.generation) this.checking = false;
    })();
  }
}
