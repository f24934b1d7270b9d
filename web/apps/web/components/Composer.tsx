import { useRef, useState, type ChangeEvent, type FormEvent, type KeyboardEvent } from 'react';

/**
 * The message box: Enter sends, Shift+Enter starts a new line. "Attach" picks a photo, video or
 * file, which is sent at once with the text typed so far as its caption.
 */
export function Composer({
  onSend,
  onSendFile,
  onTyping,
  disabled = false,
}: {
  onSend: (text: string) => void;
  onSendFile: (file: File, caption: string) => void;
  onTyping: () => void;
  disabled?: boolean;
}) {
  const [text, setText] = useState('');
  const picker = useRef<HTMLInputElement>(null);

  function submit(event?: FormEvent) {
    event?.preventDefault();
    if (!text.trim() || disabled) return;
    onSend(text);
    setText('');
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  }

  function onPicked(event: ChangeEvent<HTMLInputElement>) {
    const files = [...(event.target.files ?? [])];
    event.target.value = '';
    if (files.length === 0 || disabled) return;
    files.forEach((file, index) => onSendFile(file, index === 0 ? text : ''));
    setText('');
  }

  return (
    <form className="composer" onSubmit={submit}>
      <input
        ref={picker}
        id="composer-file"
        type="file"
        accept="image/*,video/*"
        multiple
        className="visually-hidden"
        tabIndex={-1}
        aria-label="Photo or video to send"
        onChange={onPicked}
        disabled={disabled}
      />
      <button
        type="button"
        className="button composer__attach"
        onClick={() => picker.current?.click()}
        disabled={disabled}
        aria-label="Attach a photo or video"
        title="Attach a photo or video"
      >
        Attach
      </button>
      <label htmlFor="composer-input" className="visually-hidden">
        Message
      </label>
      <textarea
        id="composer-input"
        className="composer__input"
        rows={1}
        placeholder="Message"
        value={text}
        maxLength={16000}
        onChange={(event) => {
          setText(event.target.value);
          if (event.target.value) onTyping();
        }}
        onKeyDown={onKeyDown}
        disabled={disabled}
      />
      <button type="submit" className="button button--primary" disabled={disabled || !text.trim()}>
        Send
      </button>
    </form>
  );
}
