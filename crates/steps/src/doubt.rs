//! Whether an earlier attempt of the current step may have taken effect at the provider.
//!
//! The engine reconciles before the attempt that follows an unknown outcome, but a reconcile can
//! only answer applied, not applied, or "cannot know" (which pauses the run). When the lookup
//! itself fails for a passing reason, a step answers "not applied" so that the engine goes on, and
//! then checks here, from the attempts the engine stored, whether it must look again before
//! repeating the call. The attempts table is the durable memory of the doubt: an attempt whose
//! outcome was unknown, or that was abandoned without an outcome, stays so for the whole
//! generation of the step (an operator's resume-from-step starts a new generation).

use engine::StepContext;
use sqlx::PgConnection;

/// Whether an attempt of this step, in this generation, before the current one, ended with an
/// unknown outcome or never recorded one.
pub(crate) async fn earlier_attempt_in_doubt(
    conn: &mut PgConnection,
    ctx: &StepContext,
) -> Result<bool, sqlx::Error> {
    let attempts = store::attempts::list_for_run(conn, ctx.run_id.0).await?;
    let generation = i32::try_from(ctx.generation).unwrap_or(i32::MAX);
    let current = i32::try_from(ctx.attempt).unwrap_or(i32::MAX);
    Ok(attempts.iter().any(|a| {
        a.step_name == *ctx.step
            && a.generation == generation
            && a.attempt < current
            && matches!(a.outcome.as_deref(), None | Some("unknown" | "abandoned"))
    }))
}
