//! faxsend library.
