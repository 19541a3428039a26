//! Why faxsend stops before a call has an outcome, and the exit code each
//! reason has: what the user gave is wrong (exit 2), or the machine failed
//! (exit 1). A call that was made exits with its outcome's code instead
//! (see [`crate::exit::for_outcome`]).

use common::codec::CodecError;

use crate::exit;

/// A failure of faxsend itself, before or without a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input or usage: a file that cannot be read or decoded, a broken
    /// document, a bad flag value, a wrong combination of options. Nothing
    /// was sent; the fix is in what the user gave.
    #[error(transparent)]
    BadInput(anyhow::Error),
    /// A failure of the machine rather than of what the user gave: cannot
    /// write `--output`, cannot start the runtime, an encoder bug.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl Error {
    /// The documented exit code (`--help`, README).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadInput(_) => exit::BAD_INPUT,
            Error::Internal(_) => exit::INTERNAL,
        }
    }
}

/// A bad command line: exit 2 with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

impl From<Usage> for Error {
    fn from(e: Usage) -> Error {
        Error::BadInput(e.into())
    }
}

/// Reading and encoding the documents fails on the documents, except when
/// the encoder itself or the disk fails.
impl From<CodecError> for Error {
    fn from(e: CodecError) -> Error {
        // No wildcard: a new kind of codec error needs a decision here.
        match e {
            CodecError::Write(_) | CodecError::Encoder { .. } => Error::Internal(e.into()),
            CodecError::NoInput
            | CodecError::Read { .. }
            | CodecError::EmptyFile { .. }
            | CodecError::NotAnImage { .. }
            | CodecError::PdfPassword { .. }
            | CodecError::BadPdf { .. }
            | CodecError::NotUtf8 { .. }
            | CodecError::BadPage { .. }
            | CodecError::TooLarge { .. }
            | CodecError::NoPages { .. }
            | CodecError::BadData { .. }
            | CodecError::BadGeometry { .. }
            | CodecError::UnknownName { .. }
            | CodecError::NoCommonCapability { .. }
            | CodecError::BadFaxFile { .. } => Error::BadInput(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_errors_are_the_input_s_fault_unless_the_machine_failed() {
        let bad = CodecError::NoPages {
            path: "a.tif".into(),
        };
        assert_eq!(Error::from(bad).exit_code(), exit::BAD_INPUT);
        let disk = CodecError::Write(std::io::Error::other("disk full"));
        assert_eq!(Error::from(disk).exit_code(), exit::INTERNAL);
    }

    #[test]
    fn the_message_is_the_cause_s_with_its_context() {
        let e = anyhow::anyhow!("no space left").context("cannot write out.tif");
        assert_eq!(
            format!("{:#}", Error::Internal(e)),
            "cannot write out.tif: no space left"
        );
    }
}
