//! Secrets from the environment or typed on the terminal without echo.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;

use parley_runtime::{Env, Secret};

use crate::error::{CliError, Result};
use crate::store::PassphraseSource;

/// `PARLEY_PASSPHRASE`, or asked on `/dev/tty`.
pub(crate) struct EnvOrTerminal;

impl PassphraseSource for EnvOrTerminal {
    fn passphrase(&self, confirm: bool) -> Result<Secret> {
        if let Some(passphrase) = Env::from_process().optional_secret("PARLEY_PASSPHRASE")? {
            return Ok(passphrase);
        }
        let what = "open this profile's encrypted state";
        let first = ask_hidden("Passphrase for this profile's keys: ", what)?;
        if confirm {
            let second = ask_hidden("Repeat the passphrase: ", what)?;
            if first != second {
                return Err(CliError::Usage("the passphrases differ".into()));
            }
        }
        Ok(Secret::new(first))
    }
}

/// The account password: `PARLEY_PASSWORD`, or asked on the terminal.
pub(crate) fn account_password(confirm: bool) -> Result<Secret> {
    if let Some(password) = Env::from_process().optional_secret("PARLEY_PASSWORD")? {
        return Ok(password);
    }
    let password = ask_hidden("Account password: ", "sign in")?;
    if confirm && ask_hidden("Repeat the password: ", "sign in")? != password {
        return Err(CliError::Usage("the passwords differ".into()));
    }
    Ok(Secret::new(password))
}

/// Reads one line from the controlling terminal with echo off.
fn ask_hidden(prompt: &str, purpose: &'static str) -> Result<String> {
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(|_| match purpose {
        "sign in" => CliError::Usage("a password is needed: set PARLEY_PASSWORD or run in a terminal".into()),
        _ => CliError::NoPassphrase(purpose),
    })?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a descriptor we own.
    let mut original: libc::termios = unsafe { std::mem::zeroed() };
    let have_termios = unsafe { libc::tcgetattr(fd, &mut original) } == 0;
    if have_termios {
        let mut silent = original;
        silent.c_lflag &= !libc::ECHO;
        silent.c_lflag |= libc::ECHONL;
        // SAFETY: as above; the settings are restored below.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &silent) };
    }
    let mut writer = &tty;
    let result = writer.write_all(prompt.as_bytes()).and_then(|()| writer.flush()).and_then(|()| {
        let mut line = String::new();
        BufReader::new(&tty).read_line(&mut line).map(|_| line)
    });
    if have_termios {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &original) };
    }
    let line = result.map_err(CliError::io("read from", "/dev/tty"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
