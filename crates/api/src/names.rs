//! VM names: validation and generated readable names.

/// Longest name accepted (it also becomes the guest hostname and a DNS label).
/// 63: a VM's name is also its DNS label (`<name>.vm`).
pub const MAX_NAME_LEN: usize = 63;

/// A name that is not of the documented form, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name {name:?}: {why}")]
pub struct NameError {
    pub name: String,
    pub why: String,
}

impl NameError {
    /// What a valid name looks like.
    pub const HINT: &'static str = "names use lowercase letters, digits and '-', start with a letter or digit, and are at most 63 characters (e.g. calm-otter)";
}

/// Checks a VM or image name against `[a-z0-9][a-z0-9-]{0,62}`.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let bad = |why: &str| NameError {
        name: name.to_string(),
        why: why.to_string(),
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(bad("it is empty")),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Err(bad("it must start with a lowercase letter or a digit"))
        }
        _ => {}
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("it is longer than 63 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(bad(&format!("{c:?} is not allowed")));
    }
    Ok(())
}

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brave", "bright", "calm", "clever", "cosy", "crisp", "daring", "eager",
    "fair", "fancy", "gentle", "glad", "happy", "jolly", "keen", "kind", "lively", "lucky",
    "merry", "mild", "nimble", "noble", "proud", "quick", "quiet", "rapid", "shiny", "silent",
    "sleepy", "smart", "snowy", "steady", "sunny", "swift", "tidy", "vivid", "warm", "witty",
];

const ANIMALS: &[&str] = &[
    "badger", "beaver", "bison", "crane", "dingo", "dolphin", "eagle", "falcon", "ferret", "finch",
    "fox", "gecko", "heron", "ibis", "koala", "lemur", "lynx", "marten", "mole", "moose", "newt",
    "ocelot", "otter", "owl", "panda", "puffin", "quail", "raven", "robin", "salmon", "seal",
    "sloth", "stoat", "swan", "tapir", "tiger", "trout", "walrus", "wombat", "yak",
];

/// A readable name like `calm-otter`, from a caller-supplied random number.
pub fn generated_name(random: u64) -> String {
    let pick = |words: &[&'static str], n: u64| {
        // n % len < len, which is a usize.
        let i = usize::try_from(n % words.len() as u64).unwrap_or_default();
        words[i]
    };
    let adjective = pick(ADJECTIVES, random);
    let animal = pick(ANIMALS, random / ADJECTIVES.len() as u64);
    format!("{adjective}-{animal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_of_the_documented_form() {
        for ok in ["calm-otter", "a", "0", "web-1", &"a".repeat(63)] {
            assert!(validate_name(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn rejects_bad_names_with_a_reason_and_a_hint() {
        for bad in [
            "",
            "-x",
            "Calm",
            "calm_otter",
            "calm otter",
            "ünï",
            &"a".repeat(64),
        ] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(err.name, bad);
            assert!(!err.why.is_empty());
        }
    }

    #[test]
    fn generated_names_are_valid() {
        for r in [0u64, 1, 41, 1599, u64::MAX] {
            validate_name(&generated_name(r)).unwrap();
        }
        assert_ne!(generated_name(0), generated_name(1));
    }
}
