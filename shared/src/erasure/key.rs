//! The pseudonym key the erasure pseudonymises the audit trail with: `GDPR_PSEUDONYM_KEY` (a Key
//! Vault reference in Azure, where start-up refuses to run without it); in local mode, when
//! unset, a random key generated once and kept in `DATA_DIR/gdpr-pseudonym.key` (mode 0600).

use std::fs;
use std::io;
use std::path::Path;

use super::ErasureError;
use crate::config::Settings;
use crate::domain::masking::PseudonymKey;

/// The local key file in `DATA_DIR`.
pub const KEY_FILE: &str = "gdpr-pseudonym.key";

/// The pseudonym key: the setting, or in its absence (local mode; Azure refuses to start
/// without it) the key file in `DATA_DIR`, created on first use.
pub fn pseudonym_key(settings: &Settings) -> Result<PseudonymKey, ErasureError> {
    key_from(settings.gdpr_pseudonym_key.as_deref(), &settings.data_dir)
}

/// The key from `secret`, or else from the key file in `data_dir` (created on first use).
pub(super) fn key_from(
    secret: Option<&str>,
    data_dir: &Path,
) -> Result<PseudonymKey, ErasureError> {
    let secret = match secret {
        Some(secret) => secret.to_owned(),
        None => load_or_create_key_file(data_dir).map_err(|error| {
            ErasureError::Key(format!("{}: {error}", data_dir.join(KEY_FILE).display()))
        })?,
    };
    PseudonymKey::new(&secret).map_err(|error| ErasureError::Key(error.to_string()))
}

/// Reads `dir/gdpr-pseudonym.key`, creating it (mode 0600) with a random key if missing. Two
/// processes creating it at once agree: the key is written to a private temporary file and
/// linked into place, and the loser reads the winner's.
pub fn load_or_create_key_file(dir: &Path) -> io::Result<String> {
    let path = dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(secret) => return Ok(secret.trim().to_owned()),
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        Err(_) => {}
    }
    fs::create_dir_all(dir)?;
    let secret = PseudonymKey::generate_secret();
    match crate::files::write_new_private_file(&path, secret.as_bytes()) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated the local GDPR pseudonym key");
            Ok(secret)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            Ok(fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_key_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key_file(dir.path()).unwrap();
        let second = load_or_create_key_file(dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");
    }
}
