//! relayd library.
