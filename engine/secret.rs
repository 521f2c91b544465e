//! Secrets: values that must never be stored (`hash_env`, `dotenv`) enter fingerprints only
//! as blake3 hashes keyed with a random per-user key kept outside the project, so a copied
//! state file is no oracle for guessing them (SPEC §8).

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::fingerprint::Hash;

/// Where the key lives: `$XDG_DATA_HOME/devgraph/key`, else `~/.local/share/devgraph/key`.
pub fn key_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("devgraph").join("key"))
}

/// Reads the key, creating it (32 random bytes, mode 0600) on first use.
pub fn load_or_create_key() -> std::io::Result<Hash> {
    let path =
        key_path().ok_or_else(|| std::io::Error::other("neither XDG_DATA_HOME nor HOME is set"))?;
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => return Ok(bytes.try_into().unwrap_or([0; 32])),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is not a devgraph key (expected 32 bytes); delete it to make a new one",
                path.display()
            )));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // Write to a private temp file and rename, so two first runs cannot interleave a key.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
    }
    if std::fs::hard_link(&tmp, &path).is_err() {
        // Someone else created it first: use theirs.
        let _ = std::fs::remove_file(&tmp);
        let bytes = std::fs::read(&path)?;
        return bytes
            .try_into()
            .map_err(|_| std::io::Error::other("devgraph key has the wrong length"));
    }
    let _ = std::fs::remove_file(&tmp);
    Ok(key)
}

/// The keyed hash of a secret value.
pub fn hide(key: &Hash, value: &str) -> Hash {
    *blake3::keyed_hash(key, value.as_bytes()).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_values_depend_on_the_key() {
        assert_eq!(hide(&[1; 32], "s3cret"), hide(&[1; 32], "s3cret"));
        assert_ne!(hide(&[1; 32], "s3cret"), hide(&[2; 32], "s3cret"));
        assert_ne!(
            hide(&[1; 32], "s3cret"),
            *blake3::hash(b"s3cret").as_bytes()
        );
    }
}
