// The `parley` terminal client (the workspace's binary), driven as tests/tests/e2e/e2ee_cli.rs
// drives it: `--json`, one profile per person, its own XDG data directory.
import { execFile } from 'node:child_process';
import { PASSWORD } from './api.mjs';

export class Cli {
  /** `bin`: the parley binary; `home`: an empty directory for its state; `server`: the api. */
  constructor(bin, home, server) {
    this.bin = bin;
    this.home = home;
    this.server = server;
  }

  /** Runs `parley --json --profile PROFILE ARGS…` and returns the JSON it printed last. */
  run(profile, args) {
    return new Promise((resolve, reject) => {
      execFile(
        this.bin,
        ['--json', '--profile', profile, ...args],
        {
          env: {
            PATH: process.env.PATH,
            XDG_DATA_HOME: this.home,
            PARLEY_SERVER: this.server,
            PARLEY_PASSPHRASE: `passphrase of ${profile}`,
            PARLEY_PASSWORD: PASSWORD,
          },
          timeout: 60000,
          maxBuffer: 16 * 1024 * 1024,
        },
        (error, stdout, stderr) => {
          if (error) {
            reject(
              new Error(
                `parley ${args.join(' ')} failed (${error.code}): ${stderr || error.message}`,
              ),
            );
            return;
          }
          const last = stdout.trim().split('\n').at(-1) ?? '';
          try {
            resolve(JSON.parse(last));
          } catch {
            reject(new Error(`parley ${args.join(' ')} printed no JSON: ${stdout} ${stderr}`));
          }
        },
      );
    });
  }

  /** The chat's history as `profile` decrypts it, oldest first. */
  async read(profile, chatId) {
    const page = await this.run(profile, ['read', chatId, '--limit', '200']);
    return page.messages ?? [];
  }

  /** Reads until `check(messages)` holds; the messages then. */
  async readUntil(profile, chatId, what, check, timeout = 20000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const messages = await this.read(profile, chatId);
      if (check(messages)) return messages;
      if (Date.now() > deadline) {
        const summary = messages.map((m) => `#${m.seq} ${m.type}:${m.body ?? ''}`).join(', ');
        throw new Error(`${profile}: timed out waiting for ${what}; history: ${summary}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}
