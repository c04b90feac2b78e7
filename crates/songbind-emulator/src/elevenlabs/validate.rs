//! Validation of ElevenLabs Music requests, as FastAPI-style 422 issues
//! (`{"detail": [{loc, msg, type}]}`): each field's JSON type and the
//! spec's limits (from the generated `limits` module), then the rules the
//! spec states in prose, then the generated request type as the final judge.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use songbind_elevenlabs::limits;
use songbind_elevenlabs::types::{
    AnyCompositionPlan, ComposeDetailedRequest, ComposeDetailedStreamRequest, ComposeRequest,
    ComposeStreamRequest, CompositionChunk, CreateCompositionPlanRequest, MusicModelId,
    OutputFormat, SongSectionLinesItem,
};
use songbind_transport::{Limit, Rule};

use super::Endpoint;

/// One 422 issue.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Issue {
    /// Where the offending value is (`["body", "prompt"]`).
    pub(super) loc: Vec<Value>,
    /// What is wrong with it, in pydantic's words.
    pub(super) msg: String,
    /// pydantic's machine-readable issue type.
    pub(super) kind: &'static str,
}

impl Issue {
    fn new(loc: &[Value], msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc: loc.to_vec(),
            msg: msg.into(),
            kind,
        }
    }

    /// The issue as one item of the 422's `detail` list.
    pub(super) fn to_json(&self) -> Value {
        json!({ "loc": self.loc, "msg": self.msg, "type": self.kind })
    }
}

/// What the audio is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AudioFormat {
    /// A WAV file (every format but `pcm_*`).
    Wav,
    /// Raw 16-bit little-endian mono PCM at this sample rate (`pcm_<rate>`).
    Pcm(u32),
}

/// A valid generation request, whatever endpoint it came to.
#[derive(Clone, Debug)]
pub(super) struct Generation {
    /// The prompt (prompt mode).
    pub(super) prompt: Option<String>,
    /// The composition plan (plan mode), typed and as sent.
    pub(super) plan: Option<(AnyCompositionPlan, Value)>,
    /// `music_length_ms`, if sent.
    pub(super) music_length_ms: Option<i64>,
    /// `model_id`, or its documented default.
    pub(super) model: MusicModelId,
    /// `force_instrumental`.
    pub(super) force_instrumental: bool,
    /// `with_timestamps` (the detailed endpoints; false elsewhere).
    pub(super) with_timestamps: bool,
}

/// A valid `POST /v1/music/plan` request.
#[derive(Clone, Debug)]
pub(super) struct PlanRequest {
    /// The prompt.
    pub(super) prompt: String,
    /// `music_length_ms`, if sent.
    pub(super) music_length_ms: Option<i64>,
    /// `model_id`, or its documented default.
    pub(super) model: MusicModelId,
    /// `source_composition_plan`, typed and as sent.
    pub(super) source: Option<(AnyCompositionPlan, Value)>,
}

/// The limits of one compose body (each body has its own in `limits`).
struct BodyLimits {
    prompt: Limit,
    music_length_ms: Limit,
    model_id: Limit,
    seed: Limit,
    finetune_id: Limit,
    /// The boolean fields of this body.
    flags: &'static [&'static str],
}

fn body_limits(endpoint: Endpoint) -> BodyLimits {
    use limits::*;
    match endpoint {
        Endpoint::Compose => BodyLimits {
            prompt: COMPOSE_REQUEST_PROMPT,
            music_length_ms: COMPOSE_REQUEST_MUSIC_LENGTH_MS,
            model_id: COMPOSE_REQUEST_MODEL_ID,
            seed: COMPOSE_REQUEST_SEED,
            finetune_id: COMPOSE_REQUEST_FINETUNE_ID,
            flags: &[
                "force_instrumental",
                "respect_sections_durations",
                "store_for_inpainting",
                "sign_with_c2pa",
            ],
        },
        Endpoint::Stream => BodyLimits {
            prompt: COMPOSE_STREAM_REQUEST_PROMPT,
            music_length_ms: COMPOSE_STREAM_REQUEST_MUSIC_LENGTH_MS,
            model_id: COMPOSE_STREAM_REQUEST_MODEL_ID,
            seed: COMPOSE_STREAM_REQUEST_SEED,
            finetune_id: COMPOSE_STREAM_REQUEST_FINETUNE_ID,
            flags: &["force_instrumental", "store_for_inpainting"],
        },
        Endpoint::Detailed => BodyLimits {
            prompt: COMPOSE_DETAILED_REQUEST_PROMPT,
            music_length_ms: COMPOSE_DETAILED_REQUEST_MUSIC_LENGTH_MS,
            model_id: COMPOSE_DETAILED_REQUEST_MODEL_ID,
            seed: COMPOSE_DETAILED_REQUEST_SEED,
            finetune_id: COMPOSE_DETAILED_REQUEST_FINETUNE_ID,
            flags: &[
                "force_instrumental",
                "respect_sections_durations",
                "store_for_inpainting",
                "sign_with_c2pa",
                "with_timestamps",
            ],
        },
        Endpoint::DetailedStream => BodyLimits {
            prompt: COMPOSE_DETAILED_STREAM_REQUEST_PROMPT,
            music_length_ms: COMPOSE_DETAILED_STREAM_REQUEST_MUSIC_LENGTH_MS,
            model_id: COMPOSE_DETAILED_STREAM_REQUEST_MODEL_ID,
            seed: COMPOSE_DETAILED_STREAM_REQUEST_SEED,
            finetune_id: COMPOSE_DETAILED_STREAM_REQUEST_FINETUNE_ID,
            flags: &[
                "force_instrumental",
                "store_for_inpainting",
                "with_timestamps",
            ],
        },
    }
}

/// Reads the `output_format` query parameter (the generated `OutputFormat`
/// decides what is valid; `auto` when absent).
pub(super) fn output_format(query: Option<&str>) -> Result<AudioFormat, Vec<Issue>> {
    let value = query
        .and_then(|query| reqwest::Url::parse(&format!("http://query/?{query}")).ok())
        .and_then(|url| {
            url.query_pairs()
                .find(|(name, _)| name == "output_format")
                .map(|(_, value)| value.into_owned())
        });
    let Some(value) = value else {
        return Ok(AudioFormat::Wav);
    };
    match serde_json::from_value::<OutputFormat>(Value::String(value.clone())) {
        Ok(_) => Ok(value
            .strip_prefix("pcm_")
            .and_then(|rate| rate.parse().ok())
            .map_or(AudioFormat::Wav, AudioFormat::Pcm)),
        Err(error) => Err(vec![Issue::new(
            &[json!("query"), json!("output_format")],
            format!("Input should be a documented output format: {error}"),
            "enum",
        )]),
    }
}

/// Checks a compose body of `endpoint`.
pub(super) fn generation(endpoint: Endpoint, bytes: &[u8]) -> Result<Generation, Vec<Issue>> {
    let body = object(bytes)?;
    let limits = body_limits(endpoint);
    let mut issues = Vec::new();
    let prompt = text(&body, &limits.prompt, &[], &mut issues);
    let length = integer(&body, &limits.music_length_ms, &[], &mut issues);
    let model = choice(&body, &limits.model_id, &[], &mut issues);
    let seed = integer(&body, &limits.seed, &[], &mut issues);
    text(&body, &limits.finetune_id, &[], &mut issues);
    for flag in limits.flags {
        if let Some(value) = present(&body, flag)
            && !value.is_boolean()
        {
            issues.push(Issue::new(
                &loc(&[], flag),
                "Input should be a valid boolean",
                "bool_type",
            ));
        }
    }
    let plan_value = present(&body, "composition_plan");
    let kind =
        plan_value.and_then(|plan| plan_kind(plan, &loc(&[], "composition_plan"), &mut issues));
    if !issues.is_empty() {
        return Err(issues);
    }

    // The rules the spec states in prose.
    let model = model.map_or(MusicModelId::MusicV1, model_id);
    let whole = [json!("body")];
    match (prompt.is_some(), plan_value.is_some()) {
        (true, true) => issues.push(Issue::new(
            &whole,
            "Value error, prompt and composition_plan cannot be used together",
            "value_error",
        )),
        (false, false) => issues.push(Issue::new(
            &whole,
            "Value error, either prompt or composition_plan is required",
            "value_error",
        )),
        _ => {}
    }
    if prompt.is_some() && seed.is_some() {
        issues.push(Issue::new(
            &loc(&[], "seed"),
            "Value error, seed cannot be used with prompt (plan mode only)",
            "value_error",
        ));
    }
    if let Some(kind) = kind
        && let Some(issue) = kind.mismatch(model, &loc(&[], "composition_plan"))
    {
        issues.push(issue);
    }
    if !issues.is_empty() {
        return Err(issues);
    }

    let value = Value::Object(body.clone());
    let typed = match endpoint {
        Endpoint::Compose => typed::<ComposeRequest>(value).map(|r| {
            (
                r.prompt.map(String::from),
                r.composition_plan,
                r.force_instrumental,
                false,
            )
        }),
        Endpoint::Stream => typed::<ComposeStreamRequest>(value).map(|r| {
            (
                r.prompt.map(String::from),
                r.composition_plan,
                r.force_instrumental,
                false,
            )
        }),
        Endpoint::Detailed => typed::<ComposeDetailedRequest>(value).map(|r| {
            let timestamps = r.with_timestamps;
            (
                r.prompt.map(String::from),
                r.composition_plan,
                r.force_instrumental,
                timestamps,
            )
        }),
        Endpoint::DetailedStream => typed::<ComposeDetailedStreamRequest>(value).map(|r| {
            let timestamps = r.with_timestamps;
            (
                r.prompt.map(String::from),
                r.composition_plan,
                r.force_instrumental,
                timestamps,
            )
        }),
    };
    let (prompt, plan, force_instrumental, with_timestamps) = typed?;
    let plan = match (plan, plan_value) {
        (Some(plan), Some(raw)) => {
            total_length(&plan, &limits.music_length_ms, "composition_plan")?;
            Some((plan, raw.clone()))
        }
        _ => None,
    };
    Ok(Generation {
        prompt,
        plan,
        music_length_ms: length,
        model,
        force_instrumental,
        with_timestamps,
    })
}

/// Checks a `POST /v1/music/plan` body.
pub(super) fn plan_request(bytes: &[u8]) -> Result<PlanRequest, Vec<Issue>> {
    use limits::{
        CREATE_COMPOSITION_PLAN_REQUEST_MODEL_ID as MODEL_ID,
        CREATE_COMPOSITION_PLAN_REQUEST_MUSIC_LENGTH_MS as LENGTH,
        CREATE_COMPOSITION_PLAN_REQUEST_PROMPT as PROMPT,
    };
    let body = object(bytes)?;
    let mut issues = Vec::new();
    if present(&body, "prompt").is_none() {
        issues.push(Issue::new(&loc(&[], "prompt"), "Field required", "missing"));
    }
    text(&body, &PROMPT, &[], &mut issues);
    let length = integer(&body, &LENGTH, &[], &mut issues);
    let model = choice(&body, &MODEL_ID, &[], &mut issues);
    let source = present(&body, "source_composition_plan");
    if let Some(source) = source {
        plan_kind(source, &loc(&[], "source_composition_plan"), &mut issues);
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let request: CreateCompositionPlanRequest = typed(Value::Object(body.clone()))?;
    let source = match (request.source_composition_plan, source) {
        (Some(plan), Some(raw)) => {
            total_length(&plan, &LENGTH, "source_composition_plan")?;
            Some((plan, raw.clone()))
        }
        _ => None,
    };
    Ok(PlanRequest {
        prompt: request.prompt.to_string(),
        music_length_ms: length,
        model: model.map_or(MusicModelId::MusicV1, model_id),
        source,
    })
}

/// The body as a JSON object, or the 422 that says why it is not one.
fn object(bytes: &[u8]) -> Result<Map<String, Value>, Vec<Issue>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(vec![Issue::new(
            &[json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        )]),
        Err(error) => Err(vec![Issue::new(
            &[
                json!("body"),
                json!(offset_of(bytes, error.line(), error.column())),
            ],
            format!("JSON decode error: {error}"),
            "json_invalid",
        )]),
    }
}

/// Deserializes into the generated type (the checks before make this
/// succeed for every body they let through; a failure is still a 422).
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, Vec<Issue>> {
    serde_json::from_value(value).map_err(|error| {
        vec![Issue::new(
            &[json!("body")],
            format!("Value error, {error}"),
            "value_error",
        )]
    })
}

/// The two plan formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlanKind {
    /// v1 `MusicPrompt`.
    V1,
    /// v2 `CompositionPlan`.
    V2,
}

impl PlanKind {
    /// The issue when the plan's format does not match `model`.
    fn mismatch(self, model: MusicModelId, at: &[Value]) -> Option<Issue> {
        let msg = match (self, model) {
            (PlanKind::V1, MusicModelId::MusicV2) => {
                "Value error, a MusicPrompt (v1) composition_plan needs model_id music_v1, \
                 got music_v2"
            }
            (PlanKind::V2, MusicModelId::MusicV1) => {
                "Value error, a CompositionPlan (v2) composition_plan needs model_id \
                 music_v2, got music_v1 (the default)"
            }
            _ => return None,
        };
        Some(Issue::new(at, msg, "value_error"))
    }
}

fn model_id(value: &str) -> MusicModelId {
    value.parse().unwrap_or(MusicModelId::MusicV1)
}

/// Checks a plan's shape and limits; answers its format when it has one.
///
/// Every list's length is checked against the spec's `maxItems` (from the
/// generated `limits`) before any of its items is looked at, so a plan
/// with thousands of sections or styles costs one count, not a walk.
fn plan_kind(value: &Value, at: &[Value], issues: &mut Vec<Issue>) -> Option<PlanKind> {
    use limits::{
        COMPOSITION_PLAN_CHUNKS, MUSIC_PROMPT_NEGATIVE_GLOBAL_STYLES,
        MUSIC_PROMPT_POSITIVE_GLOBAL_STYLES, MUSIC_PROMPT_SECTIONS,
    };
    let Some(plan) = value.as_object() else {
        issues.push(Issue::new(
            at,
            "Input should be a valid dictionary",
            "dict_type",
        ));
        return None;
    };
    if plan.contains_key("chunks") {
        let chunks = items(plan, &COMPOSITION_PLAN_CHUNKS, true, at, issues);
        for (i, chunk) in chunks.iter().enumerate() {
            chunk_shape(chunk, &index(at, "chunks", i), issues);
        }
        return Some(PlanKind::V2);
    }
    if [
        "sections",
        "positive_global_styles",
        "negative_global_styles",
    ]
    .iter()
    .any(|key| plan.contains_key(*key))
    {
        let sections = items(plan, &MUSIC_PROMPT_SECTIONS, true, at, issues);
        styles(plan, &MUSIC_PROMPT_POSITIVE_GLOBAL_STYLES, true, at, issues);
        styles(plan, &MUSIC_PROMPT_NEGATIVE_GLOBAL_STYLES, true, at, issues);
        for (i, section) in sections.iter().enumerate() {
            section_shape(section, &index(at, "sections", i), issues);
        }
        return Some(PlanKind::V1);
    }
    issues.push(Issue::new(
        at,
        "Input should be a MusicPrompt (positive_global_styles, negative_global_styles, \
         sections) or a CompositionPlan (chunks)",
        "union_tag_not_found",
    ));
    None
}

fn section_shape(value: &Value, at: &[Value], issues: &mut Vec<Issue>) {
    use limits::{
        SECTION_SOURCE_NEGATIVE_RANGES, SECTION_SOURCE_SONG_ID, SONG_SECTION_DURATION_MS,
        SONG_SECTION_LINES, SONG_SECTION_NEGATIVE_LOCAL_STYLES, SONG_SECTION_POSITIVE_LOCAL_STYLES,
        SONG_SECTION_SECTION_NAME,
    };
    let Some(section) = value.as_object() else {
        issues.push(Issue::new(
            at,
            "Input should be a valid dictionary",
            "dict_type",
        ));
        return;
    };
    required(section, "section_name", at, issues);
    text(section, &SONG_SECTION_SECTION_NAME, at, issues);
    styles(
        section,
        &SONG_SECTION_POSITIVE_LOCAL_STYLES,
        true,
        at,
        issues,
    );
    styles(
        section,
        &SONG_SECTION_NEGATIVE_LOCAL_STYLES,
        true,
        at,
        issues,
    );
    required(section, "duration_ms", at, issues);
    integer(section, &SONG_SECTION_DURATION_MS, at, issues);
    let lines = items(section, &SONG_SECTION_LINES, true, at, issues);
    for (i, line) in lines.iter().enumerate() {
        let here = index(at, "lines", i);
        match line.as_str() {
            // Each line's `maxLength` is not in `limits` (the generator
            // does not walk array items); the generated item type has it.
            Some(line) => {
                if let Err(error) = line.parse::<SongSectionLinesItem>() {
                    issues.push(Issue::new(
                        &here,
                        format!("String is {error}"),
                        "string_too_long",
                    ));
                }
            }
            None => issues.push(Issue::new(
                &here,
                "Input should be a valid string",
                "string_type",
            )),
        }
    }
    if let Some(source) = present(section, "source_from") {
        let here = loc(at, "source_from");
        let Some(source) = source.as_object() else {
            issues.push(Issue::new(
                &here,
                "Input should be a valid dictionary",
                "dict_type",
            ));
            return;
        };
        required(source, "song_id", &here, issues);
        text(source, &SECTION_SOURCE_SONG_ID, &here, issues);
        required(source, "range", &here, issues);
        if let Some(range) = present(source, "range") {
            time_range(range, &loc(&here, "range"), issues);
        }
        for (i, range) in items(
            source,
            &SECTION_SOURCE_NEGATIVE_RANGES,
            false,
            &here,
            issues,
        )
        .iter()
        .enumerate()
        {
            time_range(range, &index(&here, "negative_ranges", i), issues);
        }
    }
}

fn chunk_shape(value: &Value, at: &[Value], issues: &mut Vec<Issue>) {
    use limits::{
        GENERATION_CHUNK_CONDITION_STRENGTH, GENERATION_CHUNK_CONTEXT_ADHERENCE,
        GENERATION_CHUNK_DURATION_MS, GENERATION_CHUNK_NEGATIVE_STYLES,
        GENERATION_CHUNK_POSITIVE_STYLES, GENERATION_CHUNK_TEXT,
    };
    let Some(chunk) = value.as_object() else {
        issues.push(Issue::new(
            at,
            "Input should be a valid dictionary",
            "dict_type",
        ));
        return;
    };
    if chunk.contains_key("text") {
        text(chunk, &GENERATION_CHUNK_TEXT, at, issues);
        required(chunk, "duration_ms", at, issues);
        integer(chunk, &GENERATION_CHUNK_DURATION_MS, at, issues);
        styles(chunk, &GENERATION_CHUNK_POSITIVE_STYLES, true, at, issues);
        styles(chunk, &GENERATION_CHUNK_NEGATIVE_STYLES, false, at, issues);
        choice(chunk, &GENERATION_CHUNK_CONTEXT_ADHERENCE, at, issues);
        choice(chunk, &GENERATION_CHUNK_CONDITION_STRENGTH, at, issues);
        if let Some(reference) = present(chunk, "conditioning_ref") {
            audio_ref(reference, &loc(at, "conditioning_ref"), issues);
        }
    } else if chunk.contains_key("song_id") || chunk.contains_key("range") {
        audio_ref(value, at, issues);
    } else {
        issues.push(Issue::new(
            at,
            "Input should be a GenerationChunk (text, duration_ms, positive_styles) or an \
             AudioRefChunk (song_id, range)",
            "union_tag_not_found",
        ));
    }
}

fn audio_ref(value: &Value, at: &[Value], issues: &mut Vec<Issue>) {
    let Some(reference) = value.as_object() else {
        issues.push(Issue::new(
            at,
            "Input should be a valid dictionary",
            "dict_type",
        ));
        return;
    };
    required(reference, "song_id", at, issues);
    text(reference, &limits::AUDIO_REF_CHUNK_SONG_ID, at, issues);
    required(reference, "range", at, issues);
    if let Some(range) = present(reference, "range") {
        time_range(range, &loc(at, "range"), issues);
    }
}

/// `{start_ms, end_ms}`, integers, the end after the start.
fn time_range(value: &Value, at: &[Value], issues: &mut Vec<Issue>) {
    let Some(range) = value.as_object() else {
        issues.push(Issue::new(
            at,
            "Input should be a valid dictionary",
            "dict_type",
        ));
        return;
    };
    let mut bound = |name: &str| match present(range, name) {
        None => {
            issues.push(Issue::new(&loc(at, name), "Field required", "missing"));
            None
        }
        Some(value) => {
            let number = value.as_i64();
            if number.is_none() {
                issues.push(Issue::new(
                    &loc(at, name),
                    "Input should be a valid integer",
                    "int_type",
                ));
            }
            number
        }
    };
    let (start, end) = (bound("start_ms"), bound("end_ms"));
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        issues.push(Issue::new(
            at,
            format!("Value error, end_ms ({end}) must be after start_ms ({start})"),
            "value_error",
        ));
    }
}

/// The plan's total length (its sections, or its chunks and reused ranges)
/// must be within the song-length limit (the spec's prose: 3 s to 10 min,
/// the same range as `music_length_ms`).
fn total_length(plan: &AnyCompositionPlan, limit: &Limit, field: &str) -> Result<(), Vec<Issue>> {
    let total = plan_length_ms(plan);
    limit.check_number(total).map_err(|reason| {
        vec![Issue::new(
            &loc(&[], field),
            format!("Value error, the plan's total duration_ms {reason}"),
            "value_error",
        )]
    })
}

/// A plan's total length in milliseconds.
pub(super) fn plan_length_ms(plan: &AnyCompositionPlan) -> i64 {
    match plan {
        AnyCompositionPlan::MusicPrompt(plan) => plan
            .sections
            .iter()
            .map(|section| section.duration_ms)
            .fold(0i64, i64::saturating_add),
        AnyCompositionPlan::CompositionPlan(plan) => plan
            .chunks
            .iter()
            .map(|chunk| match chunk {
                CompositionChunk::GenerationChunk(chunk) => chunk.duration_ms,
                CompositionChunk::AudioRefChunk(chunk) => chunk
                    .range
                    .end_ms
                    .saturating_sub(chunk.range.start_ms)
                    .max(0),
            })
            .fold(0i64, i64::saturating_add),
    }
}

// ---- field helpers ---------------------------------------------------------------

/// `at` + `name` (at the top level, `["body", name]`).
fn loc(at: &[Value], name: &str) -> Vec<Value> {
    let mut loc = if at.is_empty() {
        vec![json!("body")]
    } else {
        at.to_vec()
    };
    loc.push(json!(name));
    loc
}

/// `at` + `name` + `i`.
fn index(at: &[Value], name: &str, i: usize) -> Vec<Value> {
    let mut loc = loc(at, name);
    loc.push(json!(i));
    loc
}

/// The field, unless absent or `null` (pydantic's optional fields take both).
fn present<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|value| !value.is_null())
}

fn required(object: &Map<String, Value>, name: &str, at: &[Value], issues: &mut Vec<Issue>) {
    if present(object, name).is_none() {
        issues.push(Issue::new(&loc(at, name), "Field required", "missing"));
    }
}

/// A string field checked against a length `limit`.
fn text<'a>(
    object: &'a Map<String, Value>,
    limit: &Limit,
    at: &[Value],
    issues: &mut Vec<Issue>,
) -> Option<&'a str> {
    let value = present(object, limit.field)?;
    let here = loc(at, limit.field);
    let Some(text) = value.as_str() else {
        issues.push(Issue::new(
            &here,
            "Input should be a valid string",
            "string_type",
        ));
        return None;
    };
    if let Rule::Length { min, max } = limit.rule {
        let len = text.chars().count();
        if let Some(min) = min.filter(|min| len < *min) {
            let s = if min == 1 { "" } else { "s" };
            issues.push(Issue::new(
                &here,
                format!("String should have at least {min} character{s}"),
                "string_too_short",
            ));
            return None;
        }
        if let Some(max) = max.filter(|max| len > *max) {
            issues.push(Issue::new(
                &here,
                format!("String should have at most {max} characters"),
                "string_too_long",
            ));
            return None;
        }
    }
    Some(text)
}

/// An integer field checked against a range `limit`.
fn integer(
    object: &Map<String, Value>,
    limit: &Limit,
    at: &[Value],
    issues: &mut Vec<Issue>,
) -> Option<i64> {
    let value = present(object, limit.field)?;
    let here = loc(at, limit.field);
    let number = match (value.as_i64(), value.as_u64()) {
        (Some(number), _) => number,
        // Above i64::MAX: above any maximum the spec gives.
        (None, Some(_)) => i64::MAX,
        (None, None) => {
            issues.push(Issue::new(
                &here,
                "Input should be a valid integer",
                "int_type",
            ));
            return None;
        }
    };
    if let Some(min) = limit.min().filter(|min| number < *min) {
        issues.push(Issue::new(
            &here,
            format!("Input should be greater than or equal to {min}"),
            "greater_than_equal",
        ));
        return None;
    }
    if let Some(max) = limit.max().filter(|max| number > *max) {
        issues.push(Issue::new(
            &here,
            format!("Input should be less than or equal to {max}"),
            "less_than_equal",
        ));
        return None;
    }
    Some(number)
}

/// A string field that must be one of an enum `limit`'s values.
fn choice<'a>(
    object: &'a Map<String, Value>,
    limit: &Limit,
    at: &[Value],
    issues: &mut Vec<Issue>,
) -> Option<&'a str> {
    let value = present(object, limit.field)?;
    let values = limit.values();
    match value.as_str() {
        Some(text) if values.contains(&text) => Some(text),
        _ => {
            let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
            let expected = match quoted.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => "a documented value".to_owned(),
            };
            issues.push(Issue::new(
                &loc(at, limit.field),
                format!("Input should be {expected}"),
                "enum",
            ));
            None
        }
    }
}

/// A list field (empty when absent or not a list; issues say why).
fn list<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    needed: bool,
    at: &[Value],
    issues: &mut Vec<Issue>,
) -> &'a [Value] {
    match present(object, name) {
        None => {
            if needed {
                issues.push(Issue::new(&loc(at, name), "Field required", "missing"));
            }
            &[]
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            issues.push(Issue::new(
                &loc(at, name),
                "Input should be a valid list",
                "list_type",
            ));
            &[]
        }
    }
}

/// A list field checked against an item-count `limit` before its items are
/// looked at: empty when absent, not a list, or outside the limit (issues
/// say why), so that the caller walks at most the limit's items.
fn items<'a>(
    object: &'a Map<String, Value>,
    limit: &Limit,
    needed: bool,
    at: &[Value],
    issues: &mut Vec<Issue>,
) -> &'a [Value] {
    let found = list(object, limit.field, needed, at, issues);
    let count = found.len();
    let Rule::Items { min, max } = limit.rule else {
        return found;
    };
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if let Some(max) = max.filter(|max| count > *max) {
        issues.push(Issue::new(
            &loc(at, limit.field),
            format!(
                "List should have at most {max} item{} after validation, not {count}",
                plural(max)
            ),
            "too_long",
        ));
        return &[];
    }
    if let Some(min) = min.filter(|min| count < *min) {
        issues.push(Issue::new(
            &loc(at, limit.field),
            format!(
                "List should have at least {min} item{} after validation, not {count}",
                plural(min)
            ),
            "too_short",
        ));
        return &[];
    }
    found
}

/// A list of style strings, within its item-count `limit`.
fn styles(
    object: &Map<String, Value>,
    limit: &Limit,
    needed: bool,
    at: &[Value],
    issues: &mut Vec<Issue>,
) {
    for (i, style) in items(object, limit, needed, at, issues).iter().enumerate() {
        if !style.is_string() {
            issues.push(Issue::new(
                &index(at, limit.field, i),
                "Input should be a valid string",
                "string_type",
            ));
        }
    }
}

/// The byte offset of a serde_json error position (1-based line and column).
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = bytes
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(endpoint: Endpoint, body: Value) -> Vec<Issue> {
        generation(endpoint, body.to_string().as_bytes()).expect_err("refused")
    }

    #[test]
    fn limits_come_from_the_spec_and_name_the_field() {
        let max = limits::COMPOSE_REQUEST_MUSIC_LENGTH_MS.max().unwrap();
        let found = issues(
            Endpoint::Compose,
            json!({ "prompt": "a song", "music_length_ms": max + 1 }),
        );
        assert_eq!(found[0].loc, [json!("body"), json!("music_length_ms")]);
        assert_eq!(found[0].kind, "less_than_equal");
        assert!(found[0].msg.contains(&max.to_string()));
    }

    #[test]
    fn prose_rules_are_enforced() {
        let both = issues(
            Endpoint::Stream,
            json!({ "prompt": "a", "composition_plan": { "chunks": [] } }),
        );
        assert!(both[0].msg.contains("cannot be used together"));
        let neither = issues(Endpoint::Compose, json!({}));
        assert!(neither[0].msg.contains("either prompt or composition_plan"));
        let seed = issues(Endpoint::Compose, json!({ "prompt": "a", "seed": 1 }));
        assert_eq!(seed[0].loc, [json!("body"), json!("seed")]);
        let v2_on_v1 = issues(
            Endpoint::Compose,
            json!({ "composition_plan": { "chunks": [] } }),
        );
        assert!(v2_on_v1[0].msg.contains("music_v2"), "{v2_on_v1:?}");
    }

    #[test]
    fn nested_plan_issues_point_at_the_value() {
        let found = issues(
            Endpoint::Compose,
            json!({
                "model_id": "music_v2",
                "composition_plan": { "chunks": [
                    { "text": "x", "duration_ms": 10, "positive_styles": [] },
                ] },
            }),
        );
        assert_eq!(
            found[0].loc,
            [
                json!("body"),
                json!("composition_plan"),
                json!("chunks"),
                json!(0),
                json!("duration_ms")
            ]
        );
    }

    #[test]
    fn a_list_over_its_max_items_is_one_issue_and_its_items_are_not_walked() {
        let max = limits::MUSIC_PROMPT_POSITIVE_GLOBAL_STYLES
            .max()
            .and_then(|max| usize::try_from(max).ok())
            .unwrap();
        // Not one of these would pass as a style: walked, they would be
        // 5,000 issues.
        let found = issues(
            Endpoint::Compose,
            json!({ "composition_plan": {
                "positive_global_styles": vec![1; 5000],
                "negative_global_styles": [],
                "sections": [],
            } }),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, "too_long");
        assert_eq!(
            found[0].msg,
            format!("List should have at most {max} items after validation, not 5000")
        );
        // Within the limit, each item is still checked.
        let found = issues(
            Endpoint::Compose,
            json!({ "composition_plan": {
                "positive_global_styles": vec![1; max],
                "negative_global_styles": [],
                "sections": [],
            } }),
        );
        assert_eq!(found.len(), max);
        assert!(found.iter().all(|issue| issue.kind == "string_type"));
    }

    #[test]
    fn odd_bodies_are_refused_without_panicking() {
        let odd = [
            json!(null),
            json!(1),
            json!("x"),
            json!([]),
            json!({}),
            json!(u64::MAX),
            json!(-1),
            json!(1.5),
            json!({ "chunks": "x" }),
            json!({ "chunks": [1, {}, { "text": 1 }, { "song_id": "" , "range": [] }] }),
            json!({ "sections": [{ "source_from": { "range": { "start_ms": 5, "end_ms": 1 } } }] }),
            json!({ "sections": [{ "lines": ["x".repeat(10_000), 3] }] }),
        ];
        for endpoint in [
            Endpoint::Compose,
            Endpoint::Stream,
            Endpoint::Detailed,
            Endpoint::DetailedStream,
        ] {
            for value in &odd {
                for field in [
                    "prompt",
                    "composition_plan",
                    "music_length_ms",
                    "model_id",
                    "seed",
                    "finetune_id",
                    "with_timestamps",
                ] {
                    let body = json!({ field: value, "model_id": "music_v2" }).to_string();
                    let _ = generation(endpoint, body.as_bytes());
                    let body = json!({ "prompt": "a", "source_composition_plan": value });
                    let _ = plan_request(body.to_string().as_bytes());
                }
                let _ = generation(endpoint, value.to_string().as_bytes());
            }
        }
        assert!(generation(Endpoint::Compose, b"\xff\xfe").is_err());
    }

    #[test]
    fn output_formats_are_the_generated_enum() {
        assert_eq!(output_format(None), Ok(AudioFormat::Wav));
        assert_eq!(
            output_format(Some("output_format=pcm_16000")),
            Ok(AudioFormat::Pcm(16_000))
        );
        assert_eq!(
            output_format(Some("output_format=mp3_44100_128")),
            Ok(AudioFormat::Wav)
        );
        assert!(output_format(Some("output_format=flac")).is_err());
    }
}
