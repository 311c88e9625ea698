//! The kernel's list format for CPU and NUMA node sets ("0-3,7"), used by
//! `process.execCPUAffinity` and `linux.memoryPolicy.nodes`.

/// Parses a comma-separated list of numbers and `a-b` ranges into the
/// sorted, deduplicated numbers it names, each below `limit`. The error
/// says what is wrong with the list; the caller names the field.
pub fn parse(list: &str, limit: usize) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (number(a, list)?, number(b, list)?),
            None => {
                let n = number(part, list)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("{list:?}: range {part} runs backwards"));
        }
        if hi >= limit {
            return Err(format!("{list:?}: {hi} is not below {limit}"));
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn number(s: &str, list: &str) -> Result<usize, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{list:?} is not a list of numbers and ranges like \"0-3,7\""
        ));
    }
    s.parse()
        .map_err(|_| format!("{list:?}: {s} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn lists_and_ranges() {
        assert_eq!(parse("0-3,7", 8).unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse("2,1,2", 8).unwrap(), vec![1, 2]);
        assert_eq!(parse("5", 8).unwrap(), vec![5]);
    }

    #[test]
    fn bad_lists() {
        for bad in ["", "a", "1-", "-1", "1,,2", "3-1", "1 2"] {
            assert!(parse(bad, 8).is_err(), "{bad:?}");
        }
        assert!(parse("8", 8).unwrap_err().contains("not below 8"));
    }
}
