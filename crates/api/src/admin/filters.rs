//! The runs filter of the dashboard and the admin API: parsed from one query shape, fetched a
//! keyset page at a time (newest or oldest first), so a page costs the same at a million runs.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use sqlx::PgConnection;
use store::run_queries::{RunCursor, RunFilter};
use store::runs::RunRow;
use utoipa::IntoParams;
use uuid::Uuid;

use super::views::push_query;

/// The statuses a run can have, in the order the dashboard shows them.
pub(crate) const STATUSES: [&str; 7] = [
    "pending",
    "running",
    "waiting",
    "paused",
    "failed",
    "succeeded",
    "cancelled",
];

/// Filters, sort and page of a runs listing. Empty values mean "any" (HTML forms send them).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunsQuery {
    /// Only this workflow, e.g. `vendor_onboarding`.
    pub(crate) workflow: Option<String>,
    #[param(schema_with = crate::schemas::run_status_filter)]
    pub(crate) status: Option<String>,
    /// Only runs currently at this step.
    pub(crate) step: Option<String>,
    /// Only runs of this vendor: its id, or its external id.
    pub(crate) vendor: Option<String>,
    /// Only runs created at or after this time (RFC 3339; the dashboard's `YYYY-MM-DDTHH:MM`,
    /// in UTC, is taken too).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub(crate) created_from: Option<String>,
    /// Only runs created before this time.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub(crate) created_to: Option<String>,
    /// Only unfinished runs unchanged for longer than this many minutes.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 525_600)]
    pub(crate) stuck_minutes: Option<String>,
    /// `newest` (default) or `oldest` first.
    #[param(inline, value_type = Option<SortOrder>)]
    pub(crate) sort: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<i32>, minimum = 1, maximum = 200)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// The order of a listing, as a query names it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "documents the parameter; it is read as text")]
pub(crate) enum SortOrder {
    Newest,
    Oldest,
}

/// The order of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sort {
    Newest,
    Oldest,
}

/// A parsed runs query.
#[derive(Debug, Clone)]
pub(crate) struct ParsedRuns {
    pub(crate) filter: RunFilter,
    pub(crate) sort: Sort,
    pub(crate) cursor: Option<RunCursor>,
    pub(crate) limit: i64,
    /// Set when the vendor filter named no vendor of the marketplace.
    pub(crate) unknown_vendor: bool,
}

/// A bad filter value; the message names the parameter.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    /// A parameter's value is not one the filter takes: its name, and what it must be.
    #[error("{message}")]
    Invalid {
        parameter: &'static str,
        message: String,
    },
    #[error(transparent)]
    Database(#[from] store::StoreError),
}

impl From<sqlx::Error> for FilterError {
    fn from(error: sqlx::Error) -> Self {
        FilterError::Database(store::StoreError::Database(error))
    }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Parses a time: RFC 3339, or a `datetime-local` / date value taken as UTC.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
}

impl RunsQuery {
    /// Parses the query; the vendor may be given by its external id, which is looked up.
    pub(crate) async fn parse(
        &self,
        conn: &mut PgConnection,
        marketplace_id: Uuid,
    ) -> Result<ParsedRuns, FilterError> {
        let status = present(&self.status).map(str::to_owned);
        if let Some(status) = &status
            && !STATUSES.contains(&status.as_str())
        {
            return Err(FilterError::Invalid {
                parameter: "status",
                message: format!("status must be one of {}", STATUSES.join(", ")),
            });
        }
        let mut unknown_vendor = false;
        let subject_id = match present(&self.vendor) {
            None => None,
            Some(text) => match Uuid::try_parse(text) {
                Ok(id) => Some(id),
                Err(_) => {
                    match store::vendors::find_by_external_id(conn, marketplace_id, text).await? {
                        Some(vendor) => Some(vendor.id),
                        None => {
                            // No such vendor: the filter matches nothing, and the page says why.
                            unknown_vendor = true;
                            Some(Uuid::nil())
                        }
                    }
                }
            },
        };
        let time = |value: &Option<String>, name: &'static str| {
            present(value)
                .map(|text| {
                    parse_time(text).ok_or_else(|| FilterError::Invalid {
                        parameter: name,
                        message: format!(
                            "{name} must be a time such as 2025-06-01T09:30 (UTC) or RFC 3339"
                        ),
                    })
                })
                .transpose()
        };
        let stuck_minutes = present(&self.stuck_minutes)
            .map(|text| {
                text.parse::<i32>()
                    .ok()
                    .filter(|minutes| (1..=525_600).contains(minutes))
                    .ok_or_else(|| FilterError::Invalid {
                        parameter: "stuck_minutes",
                        message: "stuck_minutes must be a number from 1 to 525600".to_owned(),
                    })
            })
            .transpose()?;
        let sort = match present(&self.sort) {
            None | Some("newest") => Sort::Newest,
            Some("oldest") => Sort::Oldest,
            Some(_) => {
                return Err(FilterError::Invalid {
                    parameter: "sort",
                    message: "sort must be newest or oldest".to_owned(),
                });
            }
        };
        let limit = match present(&self.limit) {
            None => 50,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|limit| (1..=200).contains(limit))
                .ok_or_else(|| FilterError::Invalid {
                    parameter: "limit",
                    message: "limit must be a number from 1 to 200".to_owned(),
                })?,
        };
        let cursor = present(&self.cursor)
            .map(|text| {
                RunCursor::decode(text).ok_or_else(|| FilterError::Invalid {
                    parameter: "cursor",
                    message: "cursor is not valid".to_owned(),
                })
            })
            .transpose()?;
        Ok(ParsedRuns {
            filter: RunFilter {
                workflow: present(&self.workflow).map(str::to_owned),
                status,
                step: present(&self.step).map(str::to_owned),
                subject_id,
                created_from: time(&self.created_from, "created_from")?,
                created_to: time(&self.created_to, "created_to")?,
                stuck_minutes,
            },
            sort,
            cursor,
            limit,
            unknown_vendor,
        })
    }

    /// The query string of these filters and sort, without the page (for links and forms).
    pub(crate) fn to_query(&self) -> String {
        let mut query = String::new();
        let fields = [
            ("workflow", &self.workflow),
            ("status", &self.status),
            ("step", &self.step),
            ("vendor", &self.vendor),
            ("created_from", &self.created_from),
            ("created_to", &self.created_to),
            ("stuck_minutes", &self.stuck_minutes),
            ("sort", &self.sort),
            ("limit", &self.limit),
        ];
        for (name, value) in fields {
            if let Some(value) = present(value) {
                push_query(&mut query, name, value);
            }
        }
        query
    }

    /// A copy with another status (for the count tiles).
    pub(crate) fn with_status(&self, status: Option<&str>) -> RunsQuery {
        RunsQuery {
            status: status.map(str::to_owned),
            cursor: None,
            ..self.clone()
        }
    }
}

/// One page of runs and the cursor of the next one.
pub(crate) async fn fetch_page(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    parsed: &ParsedRuns,
) -> Result<(Vec<RunRow>, Option<String>), sqlx::Error> {
    let mut rows = match parsed.sort {
        Sort::Newest => {
            store::run_queries::list(
                conn,
                marketplace_id,
                &parsed.filter,
                parsed.cursor,
                parsed.limit + 1,
            )
            .await?
        }
        Sort::Oldest => {
            store::run_queries::list_oldest_first(
                conn,
                marketplace_id,
                &parsed.filter,
                parsed.cursor,
                parsed.limit + 1,
            )
            .await?
        }
    };
    let next = if rows.len() as i64 > parsed.limit {
        rows.truncate(parsed.limit as usize);
        rows.last().map(|run| {
            RunCursor {
                created_at: run.created_at,
                id: run.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_from_forms_are_read_as_utc() {
        let expected = DateTime::parse_from_rfc3339("2025-06-01T09:30:00Z").unwrap();
        assert_eq!(
            parse_time("2025-06-01T09:30"),
            Some(expected.with_timezone(&Utc))
        );
        assert_eq!(
            parse_time("2025-06-01T12:30:00+03:00"),
            Some(expected.with_timezone(&Utc))
        );
        assert!(parse_time("2025-06-01").is_some());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn the_query_string_keeps_filters_and_drops_empty_values() {
        let query = RunsQuery {
            status: Some("paused".into()),
            vendor: Some("seller 1".into()),
            step: Some(String::new()),
            cursor: Some("x".into()),
            ..RunsQuery::default()
        };
        assert_eq!(query.to_query(), "status=paused&vendor=seller%201");
    }
}
