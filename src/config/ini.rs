//! An ini reader with Python `configparser.ConfigParser()` default semantics.
//!
//! Real Channelstream ini files rely on its continuation lines (`allow_posting_from` as
//! written by `make_config`), on `[DEFAULT]` and on `%%` interpolation (a literal `%` in a
//! secret must be written `%%`), so the reader follows configparser rather than a generic
//! ini crate. Python's string semantics (`str.strip()`, universal newlines) come from
//! [`crate::py::text`].

use crate::py::text;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// configparser's `MAX_INTERPOLATION_DEPTH`.
const MAX_INTERPOLATION_DEPTH: usize = 10;
/// Not in Python: caps `%(a)s%(a)s` chains that double at each level (2^10 × value length).
const MAX_INTERPOLATED_LEN: usize = 1 << 20;
const DEFAULT_SECTION: &str = "DEFAULT";

/// Why an ini file was refused. Lines are 1-based. Values are never quoted back, since the
/// offending line may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    /// A `key = value` line before the first `[section]` header.
    #[error("line {line}: a [section] header must come before any key")]
    MissingSectionHeader {
        /// The offending line.
        line: usize,
    },
    /// A `[section]` header seen a second time.
    #[error("line {line}: section [{section}] appears twice")]
    DuplicateSection {
        /// The second header's line.
        line: usize,
        /// The repeated section name.
        section: String,
    },
    /// A key given twice within one section.
    #[error("line {line}: key `{key}` appears twice in section [{section}]")]
    DuplicateKey {
        /// The second occurrence's line.
        line: usize,
        /// The section holding the key.
        section: String,
        /// The repeated key, lower-cased.
        key: String,
    },
    /// A line that is neither a header, a key/value pair, a continuation nor a comment.
    #[error("line {line}: expected `[section]`, `key = value` or `key: value`")]
    Syntax {
        /// The offending line.
        line: usize,
    },
    /// A `%(name)s` reference that could not be expanded.
    #[error("section [{section}], key `{key}`: {reason}")]
    Interpolation {
        /// The section whose value was being expanded.
        section: String,
        /// The key whose value was being expanded.
        key: String,
        /// What went wrong (missing reference, too deep, too long, bad syntax).
        reason: &'static str,
    },
}

/// A parsed ini file: sections in file order, keys lower-cased, values with continuation lines
/// joined by `\n` and not yet interpolated.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Ini {
    defaults: Vec<(String, String)>,
    sections: Vec<(String, Vec<(String, String)>)>,
}

/// Keys only: values may be secrets.
impl fmt::Debug for Ini {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = |e: &Vec<(String, String)>| e.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        let mut m = f.debug_map();
        m.entry(&DEFAULT_SECTION, &keys(&self.defaults));
        for (name, entries) in &self.sections {
            m.entry(name, &keys(entries));
        }
        m.finish()
    }
}

impl Ini {
    /// Section names in file order, without `DEFAULT` (Python's `sections()`).
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str())
    }

    /// Whether a section of this name exists (`DEFAULT` does not count).
    pub fn has_section(&self, section: &str) -> bool {
        self.section(section).is_some()
    }

    fn section(&self, section: &str) -> Option<&[(String, String)]> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .map(|(_, e)| e.as_slice())
    }

    /// Keys visible in `section` (Python's `items(section)` order: `[DEFAULT]` keys first, then
    /// the section's own). Empty if the section does not exist.
    pub fn keys(&self, section: &str) -> Vec<&str> {
        let Some(own) = self.section(section) else {
            return Vec::new();
        };
        let mut out: Vec<&str> = self.defaults.iter().map(|(k, _)| k.as_str()).collect();
        for (k, _) in own {
            if !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
        out
    }

    /// Raw value (no interpolation); `[DEFAULT]` fills in keys the section lacks. `key` is
    /// lower-cased like configparser's `optionxform`. `None` if the section does not exist.
    pub fn get_raw(&self, section: &str, key: &str) -> Option<&str> {
        let own = self.section(section)?;
        let key = key.to_lowercase();
        own.iter()
            .chain(self.defaults.iter())
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Value with `BasicInterpolation` applied: `%%` → `%`, `%(name)s` → the value of `name` in
    /// the same section (or `[DEFAULT]`), recursively; any other `%` is an error.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, IniError> {
        let Some(raw) = self.get_raw(section, key) else {
            return Ok(None);
        };
        let mut out = String::with_capacity(raw.len());
        self.interpolate(section, key, raw, 1, &mut out)?;
        Ok(Some(out))
    }

    fn interpolate(
        &self,
        section: &str,
        key: &str,
        mut rest: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), IniError> {
        let err = |reason| IniError::Interpolation {
            section: section.to_owned(),
            key: key.to_owned(),
            reason,
        };
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(err("interpolation nested too deeply (a reference loop?)"));
        }
        while let Some(p) = rest.find('%') {
            out.push_str(rest.get(..p).unwrap_or_default());
            let after = rest.get(p + 1..).unwrap_or_default();
            if let Some(tail) = after.strip_prefix('%') {
                out.push('%');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('(') {
                // KEYCRE = r"%\(([^)]+)\)s"
                let close = inner.find(')').filter(|&c| c > 0);
                let (name, tail) = match close {
                    Some(c) => match inner.get(c + 1..).and_then(|t| t.strip_prefix('s')) {
                        Some(tail) => (inner.get(..c).unwrap_or_default(), tail),
                        None => return Err(err("bad %(name)s reference")),
                    },
                    None => return Err(err("bad %(name)s reference")),
                };
                let value = self
                    .get_raw(section, name)
                    .ok_or_else(|| err("%(name)s refers to a key that does not exist"))?;
                if value.contains('%') {
                    self.interpolate(section, key, value, depth + 1, out)?;
                } else {
                    out.push_str(value);
                }
                rest = tail;
            } else {
                return Err(err(
                    "'%' must be followed by '%' or '(' (write %% for a literal %)",
                ));
            }
            if out.len() > MAX_INTERPOLATED_LEN {
                return Err(err("value too long after interpolation"));
            }
        }
        out.push_str(rest);
        Ok(())
    }
}

/// Where key lines currently go.
#[derive(Clone, Copy)]
enum Cursor {
    None,
    Defaults,
    Section(usize),
}

type RawEntries = Vec<(String, Vec<String>)>;

/// Parse ini text with Python `configparser.ConfigParser()` default semantics: `[section]`
/// headers, `key = value` / `key: value` (first delimiter wins), full-line `#`/`;` comments
/// (no inline comments: `a = b # c` has the value `b # c`), lower-cased keys, indented
/// continuation lines joined with `\n` (blank lines inside a value are kept, trailing ones
/// dropped), `[DEFAULT]` visible in every section, duplicate sections or keys are errors.
///
/// One leniency: a leading UTF-8 byte-order mark is skipped.
pub fn parse_ini(text: &str) -> Result<Ini, IniError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut defaults: RawEntries = Vec::new();
    let mut sections: Vec<(String, RawEntries)> = Vec::new();
    let mut section_index: HashMap<String, usize> = HashMap::new();
    // configparser's `elements_added`, with `usize::MAX` standing for DEFAULT.
    let mut seen_keys: HashSet<(usize, String)> = HashSet::new();
    let mut cursor = Cursor::None;
    // Index of the key whose value continuation lines extend.
    let mut current: Option<usize> = None;
    let mut indent_level = 0usize;

    for (i, line) in text::lines(text).enumerate() {
        let lineno = i + 1;
        let entries: Option<&mut RawEntries> = match cursor {
            Cursor::None => None,
            Cursor::Defaults => Some(&mut defaults),
            Cursor::Section(s) => sections.get_mut(s).map(|(_, e)| e),
        };
        let stripped = text::strip(line);
        let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
        if stripped.is_empty() || is_comment {
            // Blank lines belong to the value being continued; comment lines vanish.
            if !is_comment {
                if let (Some(entries), Some(k)) = (entries, current) {
                    if let Some((_, lines)) = entries.get_mut(k) {
                        lines.push(String::new());
                    }
                }
            }
            continue;
        }
        let indent = line.chars().position(|c| !text::isspace(c)).unwrap_or(0);
        if let (Some(entries), Some(k), true) = (entries, current, indent > indent_level) {
            // Checked before the header/key forms: an indented `[x]` or `a = b` is value text.
            if let Some((_, lines)) = entries.get_mut(k) {
                lines.push(stripped.to_owned());
            }
            continue;
        }
        indent_level = indent;
        if let Some(name) = section_header(stripped) {
            current = None;
            if name == DEFAULT_SECTION {
                cursor = Cursor::Defaults;
            } else if section_index.contains_key(name) {
                return Err(IniError::DuplicateSection {
                    line: lineno,
                    section: name.to_owned(),
                });
            } else {
                section_index.insert(name.to_owned(), sections.len());
                cursor = Cursor::Section(sections.len());
                sections.push((name.to_owned(), Vec::new()));
            }
            continue;
        }
        let (entries, sect_id, sect_name) = match cursor {
            Cursor::None => return Err(IniError::MissingSectionHeader { line: lineno }),
            Cursor::Defaults => (&mut defaults, usize::MAX, DEFAULT_SECTION),
            Cursor::Section(s) => match sections.get_mut(s) {
                Some((name, e)) => (e, s, name.as_str()),
                None => return Err(IniError::MissingSectionHeader { line: lineno }),
            },
        };
        let (key, value) = split_option(stripped).ok_or(IniError::Syntax { line: lineno })?;
        if !seen_keys.insert((sect_id, key.clone())) {
            return Err(IniError::DuplicateKey {
                line: lineno,
                section: sect_name.to_owned(),
                key,
            });
        }
        current = Some(entries.len());
        entries.push((key, vec![value.to_owned()]));
    }

    let join = |e: RawEntries| -> Vec<(String, String)> {
        e.into_iter()
            .map(|(k, lines)| {
                (
                    k,
                    lines.join("\n").trim_end_matches(text::isspace).to_owned(),
                )
            })
            .collect()
    };
    Ok(Ini {
        defaults: join(defaults),
        sections: sections.into_iter().map(|(n, e)| (n, join(e))).collect(),
    })
}

/// `SECTCRE = r"\[(?P<header>.+)\]"` with `re.match`: from the opening bracket to the LAST
/// closing one (greedy), at least one character between them; text after it is ignored.
fn section_header(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let close = inner.rfind(']').filter(|&c| c > 0)?;
    inner.get(..close)
}

/// `OPTCRE`: the key is everything before the first `=` or `:` (right-stripped, lower-cased,
/// non-empty), the value everything after it, stripped.
fn split_option(s: &str) -> Option<(String, &str)> {
    let d = s.find(['=', ':'])?;
    let key = s.get(..d)?.trim_end_matches(text::isspace);
    if key.is_empty() {
        return None;
    }
    Some((key.to_lowercase(), text::strip(s.get(d + 1..)?)))
}
