//! The daily digest: [`model`] decides what a digest contains (grouping, de-duplication, order),
//! [`render`], [`html`] and [`chat`] write it as Markdown, HTML and chat text, [`notify`]
//! delivers a stored digest to one channel, [`schedule`] says when the next one is due, and
//! [`atom`] exports matched items as an Atom feed.

pub mod atom;
pub mod chat;
pub mod html;
pub mod model;
pub mod notify;
pub mod render;
pub mod schedule;

pub use model::Digest;
pub use notify::{NotifyError, deliver};
pub use render::{RenderContext, render_markdown, to_markdown};
pub use schedule::{latest_slot_at_or_before, next_slot_after};
