//! The operator and scripting commands: `runs`, `webhooks`, `vendors import` and `demo`. Each prints a
//! readable report by default and JSON with `--json` where scripts need it; errors go to stderr
//! naming the flag or field at fault, with a non-zero exit.

pub mod csv;
pub mod demo;
pub mod import;
pub mod runs;
pub mod table;
pub mod webhooks;

use anyhow::bail;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::settings::Settings;

/// The actor recorded in a run's history for an action taken at the command line: `--actor`
/// when given, else the operating-system user, else `cli`.
pub fn actor(flag: Option<&str>, settings: &Settings) -> engine::Actor {
    let name = flag
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .or(settings.os_user.as_deref())
        .unwrap_or("cli");
    engine::Actor::operator(name)
}

/// The longest token name kept.
const MAX_TOKEN_NAME_CHARS: usize = 100;

/// A token's name, trimmed; refused when blank, too long or holding control characters.
pub fn token_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() {
        bail!("--name: say whom the token is for (e.g. --name dana, or --name 'shop backend')");
    }
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        bail!("--name: the name is longer than {MAX_TOKEN_NAME_CHARS} characters");
    }
    if name.chars().any(char::is_control) {
        bail!("--name: the name holds control characters");
    }
    Ok(name.to_owned())
}

/// The marketplace a command acts on: `--marketplace` when given (it must exist), else the only
/// marketplace there is, else, on the development database, `make run`'s development
/// marketplace (said on stderr).
pub async fn marketplace(
    conn: &mut PgConnection,
    flag: Option<Uuid>,
    development: bool,
) -> anyhow::Result<Uuid> {
    if let Some(id) = flag {
        if store::marketplaces::find(conn, id).await?.is_none() {
            bail!("--marketplace: no marketplace with id {id}");
        }
        return Ok(id);
    }
    const SHOWN: i64 = 10;
    let marketplaces = store::marketplaces::list(conn, SHOWN + 1).await?;
    match marketplaces.as_slice() {
        [only] => return Ok(only.id),
        [] => bail!(
            "--marketplace: there is no marketplace yet (`vendorflow marketplaces create NAME` \
             makes one)"
        ),
        _ => {}
    }
    if development
        && let Some(dev) =
            store::marketplaces::find_by_name(conn, crate::local::MARKETPLACE).await?
    {
        eprintln!(
            "vendorflow: --marketplace not given: using make run's {} {}",
            crate::local::MARKETPLACE,
            dev.id
        );
        return Ok(dev.id);
    }
    let mut names: Vec<String> = marketplaces
        .iter()
        .take(SHOWN as usize)
        .map(|m| format!("{} ({})", m.id, m.name))
        .collect();
    if marketplaces.len() > SHOWN as usize {
        names.push("…".to_owned());
    }
    bail!(
        "--marketplace ID is required: there is more than one marketplace: {}",
        names.join(", ")
    )
}

/// A time as `2025-01-31 14:05:09Z`.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// How long ago (or how far ahead) `at` is from `now`, in the largest sensible unit:
/// `12s ago`, `3m ago`, `in 2h`.
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let span = duration_words(seconds.unsigned_abs());
    if seconds >= 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A span of seconds as `45s`, `12m`, `5h` or `3d`.
pub fn duration_words(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// A span of milliseconds as `850ms` or `2.4s`.
pub fn millis_words(millis: i64) -> String {
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        format!("{:.1}s", millis as f64 / 1000.0)
    } else {
        duration_words(u64::try_from(millis / 1000).unwrap_or(0))
    }
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `text` quoted for a POSIX shell when it needs it, so a printed command can be pasted.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '='));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_use_the_largest_sensible_unit() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(
            relative(now - chrono::Duration::seconds(12), now),
            "12s ago"
        );
        assert_eq!(relative(now - chrono::Duration::minutes(3), now), "3m ago");
        assert_eq!(relative(now + chrono::Duration::hours(2), now), "in 2h");
        assert_eq!(relative(now - chrono::Duration::days(4), now), "4d ago");
        assert_eq!(millis_words(850), "850ms");
        assert_eq!(millis_words(2400), "2.4s");
        assert_eq!(millis_words(180_000), "3m");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("דנה קרמיקה בע\"מ", 6), "דנה ק…");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }

    #[test]
    fn token_names_are_trimmed_and_must_say_whom_the_token_is_for() {
        assert_eq!(token_name("  dana ").unwrap(), "dana");
        assert_eq!(token_name("shop backend").unwrap(), "shop backend");
        for bad in ["", "   ", "a\nb", &"x".repeat(101)] {
            let error = token_name(bad).unwrap_err().to_string();
            assert!(error.starts_with("--name"), "{error}");
        }
    }

    #[test]
    fn shell_quoting_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("terminal_approved"), "terminal_approved");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
