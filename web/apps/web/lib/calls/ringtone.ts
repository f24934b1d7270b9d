/**
 * The ring of an incoming call, drawn with Web Audio (no sound file to fetch): two tones for a
 * second, then two seconds of quiet, until the returned function stops it. Where the browser
 * does not let a page play sound before a click, it stays silent and the alert still shows.
 */
const RING_MS = 1000;
const CYCLE_MS = 3000;

export function startRingtone(): () => void {
  const Context = typeof window === 'undefined' ? undefined : window.AudioContext;
  if (!Context) return () => undefined;
  let context: AudioContext;
  try {
    context = new Context();
  } catch {
    return () => undefined;
  }
  const gain = context.createGain();
  gain.gain.value = 0;
  gain.connect(context.destination);
  for (const frequency of [440, 480]) {
    const tone = context.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(gain);
    tone.start();
  }
  const ring = () => {
    const now = context.currentTime;
    gain.gain.setValueAtTime(0.08, now);
    gain.gain.setValueAtTime(0, now + RING_MS / 1000);
  };
  ring();
  const timer = window.setInterval(ring, CYCLE_MS);
  return () => {
    window.clearInterval(timer);
    void context.close().catch(() => undefined);
  };
}
