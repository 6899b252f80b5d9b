//! Tests of procsync-tokio, each case in a process of its own.
//!
//! This is a `harness = false` test: run without the role variable, it is the driver,
//! which re-executes itself once per case with a fresh `PROCSYNC_ROOT`, a deadline,
//! and the role `case:<name>`; afterwards it checks that the case left no file under
//! its root and removes it. A case process may start more copies of this binary in
//! other roles (sync signallers and waiters, the example server), which die with it
//! (parent-death signal). A process per case keeps thread counts (read from
//! /proc/self/status) and the process-wide reactor pool free of other cases.
//!
//! Arguments: substrings selecting cases by name (none = all).

mod basic;
mod cross;
mod harness;
mod many;
mod server_case;
mod storm;

#[path = "../../examples/server.rs"]
#[allow(dead_code)]
mod server;

use std::process::ExitCode;

/// Every case: (name, body). Names cite the SEMANTICS.md items they check.
pub const CASES: &[(&str, fn())] = &[
    (
        "single_waits_complete_for_each_kind",
        basic::single_waits_complete_for_each_kind,
    ),
    (
        "manual_event_pulse_releases_every_async_waiter_pu01",
        basic::manual_event_pulse_releases_every_async_waiter_pu01,
    ),
    (
        "wait_any_takes_lowest_index_wy03",
        basic::wait_any_takes_lowest_index_wy03,
    ),
    (
        "deadline_passes_with_object_untouched_to05",
        basic::deadline_passes_with_object_untouched_to05,
    ),
    (
        "dropped_after_handoff_gives_back_to06",
        basic::dropped_after_handoff_gives_back_to06,
    ),
    (
        "dropped_before_signal_takes_nothing_to06",
        basic::dropped_before_signal_takes_nothing_to06,
    ),
    (
        "mutex_guard_moves_between_tasks",
        basic::mutex_guard_moves_between_tasks,
    ),
    (
        "waiters_on_one_object_are_served_fifo",
        basic::waiters_on_one_object_are_served_fifo,
    ),
    (
        "wait_all_is_atomic_and_cancel_safe",
        basic::wait_all_is_atomic_and_cancel_safe,
    ),
    (
        "signal_and_wait_signals_then_waits",
        basic::signal_and_wait_signals_then_waits,
    ),
    (
        "bad_input_is_a_clear_error",
        basic::bad_input_is_a_clear_error,
    ),
    (
        "wait_pending_past_the_safety_net_still_completes",
        basic::wait_pending_past_the_safety_net_still_completes,
    ),
    (
        "more_waits_on_one_object_than_its_queue_holds",
        basic::more_waits_on_one_object_than_its_queue_holds,
    ),
    (
        "dropped_wait_does_not_swallow_the_next_waits_wake_up",
        basic::dropped_wait_does_not_swallow_the_next_waits_wake_up,
    ),
    (
        "runtime_without_io_falls_back_to_reactors_quietly",
        basic::runtime_without_io_falls_back_to_reactors_quietly,
    ),
    (
        "current_thread_runtime_works",
        basic::current_thread_runtime_works,
    ),
    (
        "async_waits_on_sync_signallers_in_other_processes",
        cross::async_waits_on_sync_signallers_in_other_processes,
    ),
    (
        "async_waits_are_rung_through_the_bell_across_processes",
        cross::async_waits_are_rung_through_the_bell_across_processes,
    ),
    (
        "belled_waits_fall_back_when_the_bell_is_out_of_reach",
        cross::belled_waits_fall_back_when_the_bell_is_out_of_reach,
    ),
    (
        "dropped_after_handoff_keeps_a_later_sets_signal_ev03_to06",
        cross::dropped_after_handoff_keeps_a_later_sets_signal_ev03_to06,
    ),
    (
        "dropped_after_handoff_keeps_a_later_sets_signal_ev03_to06@reactor",
        cross::dropped_after_handoff_keeps_a_later_sets_signal_ev03_to06,
    ),
    (
        "sync_waiter_in_other_process_sees_async_mutex_owner",
        cross::sync_waiter_in_other_process_sees_async_mutex_owner,
    ),
    (
        "killed_async_waiter_process_loses_no_signal",
        cross::killed_async_waiter_process_loses_no_signal,
    ),
    (
        "owner_process_dies_async_lock_reports_abandoned_ab07",
        cross::owner_process_dies_async_lock_reports_abandoned_ab07,
    ),
    (
        "ten_thousand_waits_on_distinct_objects_bounded_threads@reactor",
        many::ten_thousand_waits_on_distinct_objects_bounded_threads,
    ),
    (
        "reactor_cap_is_a_clear_error@reactor",
        many::reactor_cap_is_a_clear_error,
    ),
    (
        "wait_any_across_reactors_takes_exactly_one@reactor",
        many::wait_any_across_reactors_takes_exactly_one,
    ),
    (
        "ten_thousand_io_uring_waits_add_no_thread",
        many::ten_thousand_io_uring_waits_add_no_thread,
    ),
    (
        "dropped_after_handoff_gives_back_to06@reactor",
        basic::dropped_after_handoff_gives_back_to06,
    ),
    (
        "async_waits_on_sync_signallers_in_other_processes@reactor",
        cross::async_waits_on_sync_signallers_in_other_processes,
    ),
    (
        "cancellation_storm_conserves_units_signals_ownership@reactor",
        storm::cancellation_storm_conserves_units_signals_ownership,
    ),
    (
        "cancellation_storm_conserves_units_signals_ownership",
        storm::cancellation_storm_conserves_units_signals_ownership,
    ),
    (
        "auto_event_signals_conserved_without_acks_to06a",
        storm::auto_event_signals_conserved_without_acks_to06a,
    ),
    (
        "auto_event_signals_conserved_without_acks_to06a@reactor",
        storm::auto_event_signals_conserved_without_acks_to06a,
    ),
    (
        "storm_over_thousands_of_objects_conserves_units",
        storm::storm_over_thousands_of_objects_conserves_units,
    ),
    (
        "example_server_limits_jobs_across_processes",
        server_case::example_server_limits_jobs_across_processes,
    ),
];

fn main() -> ExitCode {
    match std::env::var(harness::ROLE) {
        Ok(role) => harness::run_role(&role),
        Err(_) => harness::drive(),
    }
}
