//! The master key: 32 bytes from the config (or `KEYWARD_KEYS__MASTER_KEY`), or, for
//! development, a key generated into the data directory with a loud warning. Sub-keys for
//! each purpose are derived from it with HMAC-SHA256, so one secret serves every instance.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;

pub struct MasterKey(hmac::Key);

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key is not 32 bytes of base64")]
    Malformed,
    #[error("cannot read or write the development master key at {0}: {1}")]
    Io(String, std::io::Error),
}

impl MasterKey {
    pub fn from_base64(text: &str) -> Result<MasterKey, MasterKeyError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| MasterKeyError::Malformed)?;
        if bytes.len() != 32 {
            return Err(MasterKeyError::Malformed);
        }
        Ok(MasterKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The configured key, or the development key in `data_dir/master.key` (created on first
    /// use). The second value is true when the development key is in use.
    pub fn resolve(configured: Option<&str>, data_dir: &Path) -> Result<(MasterKey, bool), MasterKeyError> {
        if let Some(k) = configured {
            return Ok((MasterKey::from_base64(k)?, false));
        }
        let path = data_dir.join("master.key");
        let io = |e| MasterKeyError::Io(path.display().to_string(), e);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((MasterKey::from_base64(&text)?, true)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(io)?;
                let mut bytes = [0u8; 32];
                aws_lc_rs::rand::fill(&mut bytes).map_err(|_| MasterKeyError::Malformed)?;
                write_private(&path, &STANDARD.encode(bytes)).map_err(io)?;
                Ok((MasterKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)), true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A 32-byte key for one purpose.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.0, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(&tag.as_ref()[..32]);
        out
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_key_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("kw-mk-{}", uuid::Uuid::new_v4()));
        let (a, dev) = MasterKey::resolve(None, &dir).expect("created");
        assert!(dev);
        let (b, _) = MasterKey::resolve(None, &dir).expect("read back");
        assert_eq!(a.derive("x"), b.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn configured_key_must_be_32_bytes() {
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
    }
}
