//! gatewayd library.
