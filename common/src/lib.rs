//! Shared by relayd, gatewayd, faxsend and faxrecv.
