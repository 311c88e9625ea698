//! Container ids: what runc accepts, so an id is always a safe single
//! directory name under the state root.

use crate::error::{Error, Result};

/// Checks a container id: non-empty, at most 1024 bytes, only
/// `[A-Za-z0-9_+.-]`, and not `.` or `..` (so it is always one path
/// component under the state root).
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 characters");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b))
    {
        return bad("only letters, digits, '_', '+', '.' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "web-1", "x.y_z+1", &"a".repeat(1024)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", &"a".repeat(1025)] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
