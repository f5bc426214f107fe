//! The daily digest: [`render`] turns the store's pending matches into Markdown, [`notify`]
//! delivers a stored digest to one channel, and [`schedule`] says when the next one is due.

pub mod notify;
pub mod render;
pub mod schedule;

pub use notify::{NotifyError, deliver};
pub use render::{RenderContext, render_markdown};
pub use schedule::{latest_slot_at_or_before, next_slot_after};
