//! Shared by relayd, gatewayd, faxsend and faxrecv.
//!
//! - [`codec`]: fax pages: reading images, Group 3/4 coding, TIFF Class F.

pub mod codec;
