//! faxrecv library.
