//! PLACEHOLDER until the codec branch lands: only the types the network side uses.
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compression {
    G4,
    Mr,
    Mh,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resolution {
    Standard,
    Fine,
    Superfine,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub compressions: Vec<Compression>,
    pub resolutions: Vec<Resolution>,
    pub widths: Vec<u32>,
    pub max_pages: u32,
}
impl Capabilities {
    pub fn all() -> Self {
        Capabilities {
            compressions: vec![Compression::G4, Compression::Mr, Compression::Mh],
            resolutions: vec![
                Resolution::Standard,
                Resolution::Fine,
                Resolution::Superfine,
            ],
            widths: vec![1728, 2048, 2432],
            max_pages: u32::MAX,
        }
    }
}

pub fn fit_page(p: &EncodedPage, _c: &Capabilities) -> Result<EncodedPage, std::io::Error> {
    Ok(p.clone())
}
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedPage {
    pub width: u32,
    pub height: u32,
    pub resolution: Resolution,
    pub compression: Compression,
    pub data: Vec<u8>,
}
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    pub width: u32,
    pub height: u32,
    pub resolution: Resolution,
    pub compression: Compression,
    pub data_len: u64,
}
impl EncodedPage {
    pub fn info(&self) -> PageInfo {
        PageInfo {
            width: self.width,
            height: self.height,
            resolution: self.resolution,
            compression: self.compression,
            data_len: self.data.len() as u64,
        }
    }
}
