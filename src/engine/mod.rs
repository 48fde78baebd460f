//! The copy engines ferry drives. Today that is skopeo; the module boundary keeps argv
//! building, output parsing and failure classification in one place per engine.

pub mod skopeo;
