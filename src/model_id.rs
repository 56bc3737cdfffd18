//! Model ids. An id is what clients put in `model`, and it also becomes a folder name in the
//! model cache and the data directory, so it is restricted to `[A-Za-z0-9._:-]`, must not start
//! with a dot and must not contain `..`. Every way an id enters the server (`models.toml`, a
//! run-time registration, `--load`) goes through [`check_id`].

/// Longest accepted id, in bytes.
const MAX_ID_LEN: usize = 200;

/// Checks a model id; the error says what is wrong with it.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a model id must not be empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("model id is longer than {MAX_ID_LEN} characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "model id `{id}` contains `{c}`: use only letters, digits and `._:-`"
        ));
    }
    if id.starts_with('.') || id.contains("..") {
        return Err(format!(
            "model id `{id}` must not start with a dot or contain `..`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_id;

    #[test]
    fn accepts_the_shipped_and_fine_tuned_ids() {
        for id in [
            "smollm2-135m-instruct",
            "qwen2.5-coder-0.5b-instruct",
            "ft:smollm2-135m-instruct:gsm8k:ab12cd",
            "ft:base:suffix:id:ckpt-step-100",
        ] {
            assert_eq!(check_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn refuses_ids_that_could_escape_a_folder() {
        for id in [
            "", ".", "..", "../x", "a/..", ".x", "a/b", "a\\b", "a b", "é", "x..y",
        ] {
            assert!(check_id(id).is_err(), "{id:?}");
        }
        assert!(check_id(&"a".repeat(201)).is_err());
    }
}
