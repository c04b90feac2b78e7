//! The providers songbind generates clients for, and what the generator
//! cannot express for each.

/// One provider: its spec and the crate its generated code goes to.
pub struct Provider {
    /// Short name (the slug), as in `specs/<name>.yaml` and
    /// `crates/songbind-<name>`.
    pub name: &'static str,
    /// The provider's name as people write it.
    pub display: &'static str,
    /// Operations that stay in the spec but are left out of generation.
    pub excluded: &'static [Excluded],
}

/// An operation the generator cannot express; handwritten code sends it,
/// using the types generated from its schemas.
pub struct Excluded {
    pub operation_id: &'static str,
    pub reason: &'static str,
}

pub const ALL: &[Provider] = &[
    Provider {
        name: "soundverse",
        display: "Soundverse",
        excluded: &[],
    },
    Provider {
        name: "soundpiece",
        display: "SoundPiece",
        excluded: &[],
    },
    Provider {
        name: "musicgpt",
        display: "MusicGPT",
        excluded: &[Excluded {
            operation_id: "remix",
            reason: "progenitor 0.15 has no multipart/form-data request bodies; \
                     the `songbind` crate sends it with reqwest multipart from the generated `RemixForm` type",
        }],
    },
    Provider {
        name: "elevenlabs",
        display: "ElevenLabs",
        excluded: &[Excluded {
            operation_id: "compose_detailed",
            reason: "its 200 is multipart/mixed (a JSON part beside an audio part): progenitor 0.15 \
                     decodes only JSON answers and would hand the parts back as one untyped byte stream; \
                     the `songbind` crate splits them into the generated `DetailedMusicResponse` and the audio",
        }],
    },
];

impl Provider {
    pub fn spec_path(&self) -> String {
        format!("specs/{}.yaml", self.name)
    }

    pub fn crate_dir(&self) -> String {
        format!("crates/songbind-{}", self.name)
    }
}
