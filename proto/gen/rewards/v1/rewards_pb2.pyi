from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_OK: _ClassVar[Status]
    STATUS_ABSTAIN: _ClassVar[Status]
    STATUS_TIMEOUT: _ClassVar[Status]
    STATUS_ERROR: _ClassVar[Status]
STATUS_UNSPECIFIED: Status
STATUS_OK: Status
STATUS_ABSTAIN: Status
STATUS_TIMEOUT: Status
STATUS_ERROR: Status

class VerifierRef(_message.Message):
    __slots__ = ("name", "version", "weight", "weight_set", "params", "gate", "gate_min")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_SET_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    GATE_MIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    weight: float
    weight_set: bool
    params: _struct_pb2.Struct
    gate: bool
    gate_min: float
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., weight: _Optional[float] = ..., weight_set: _Optional[bool] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., gate: _Optional[bool] = ..., gate_min: _Optional[float] = ...) -> None: ...

class ComponentList(_message.Message):
    __slots__ = ("components",)
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[VerifierRef]
    def __init__(self, components: _Optional[_Iterable[_Union[VerifierRef, _Mapping]]] = ...) -> None: ...

class RewardSpec(_message.Message):
    __slots__ = ("components", "name", "routes", "task_key")
    class RoutesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ComponentList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ComponentList, _Mapping]] = ...) -> None: ...
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    TASK_KEY_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[VerifierRef]
    name: str
    routes: _containers.MessageMap[str, ComponentList]
    task_key: str
    def __init__(self, components: _Optional[_Iterable[_Union[VerifierRef, _Mapping]]] = ..., name: _Optional[str] = ..., routes: _Optional[_Mapping[str, ComponentList]] = ..., task_key: _Optional[str] = ...) -> None: ...

class Sample(_message.Message):
    __slots__ = ("id", "prompt", "completion", "reference", "spec", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    prompt: str
    completion: str
    reference: _struct_pb2.Value
    spec: RewardSpec
    metadata: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., prompt: _Optional[str] = ..., completion: _Optional[str] = ..., reference: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., spec: _Optional[_Union[RewardSpec, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ComponentResult(_message.Message):
    __slots__ = ("name", "version", "weight", "status", "reward", "reason", "latency_ms", "params_hash", "cached", "gate")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_HASH_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    weight: float
    status: Status
    reward: float
    reason: str
    latency_ms: float
    params_hash: str
    cached: bool
    gate: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., weight: _Optional[float] = ..., status: _Optional[_Union[Status, str]] = ..., reward: _Optional[float] = ..., reason: _Optional[str] = ..., latency_ms: _Optional[float] = ..., params_hash: _Optional[str] = ..., cached: _Optional[bool] = ..., gate: _Optional[bool] = ...) -> None: ...

class SampleResult(_message.Message):
    __slots__ = ("id", "status", "reward", "reason", "components", "latency_ms", "sample_index", "spec_name", "spec_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SPEC_NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: Status
    reward: float
    reason: str
    components: _containers.RepeatedCompositeFieldContainer[ComponentResult]
    latency_ms: float
    sample_index: int
    spec_name: str
    spec_version: int
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., reward: _Optional[float] = ..., reason: _Optional[str] = ..., components: _Optional[_Iterable[_Union[ComponentResult, _Mapping]]] = ..., latency_ms: _Optional[float] = ..., sample_index: _Optional[int] = ..., spec_name: _Optional[str] = ..., spec_version: _Optional[int] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("run_id", "step", "samples", "spec")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: int
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    spec: RewardSpec
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[int] = ..., samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ..., spec: _Optional[_Union[RewardSpec, _Mapping]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SampleResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SampleResult, _Mapping]]] = ...) -> None: ...

class GroupRequest(_message.Message):
    __slots__ = ("run_id", "step", "group_id", "samples", "spec")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: int
    group_id: str
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    spec: RewardSpec
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[int] = ..., group_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ..., spec: _Optional[_Union[RewardSpec, _Mapping]] = ...) -> None: ...

class GroupResult(_message.Message):
    __slots__ = ("group_id", "step", "results", "error")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    step: int
    results: _containers.RepeatedCompositeFieldContainer[SampleResult]
    error: GroupError
    def __init__(self, group_id: _Optional[str] = ..., step: _Optional[int] = ..., results: _Optional[_Iterable[_Union[SampleResult, _Mapping]]] = ..., error: _Optional[_Union[GroupError, _Mapping]] = ...) -> None: ...

class GroupError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ParamInfo(_message.Message):
    __slots__ = ("name", "type", "default_json", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_JSON_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    default_json: str
    description: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., default_json: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class VerifierInfo(_message.Message):
    __slots__ = ("name", "version", "description", "params", "params_schema_json", "available", "unavailable_reason", "latest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    description: str
    params: _containers.RepeatedCompositeFieldContainer[ParamInfo]
    params_schema_json: str
    available: bool
    unavailable_reason: str
    latest: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., params: _Optional[_Iterable[_Union[ParamInfo, _Mapping]]] = ..., params_schema_json: _Optional[str] = ..., available: _Optional[bool] = ..., unavailable_reason: _Optional[str] = ..., latest: _Optional[bool] = ...) -> None: ...

class ListVerifiersRequest(_message.Message):
    __slots__ = ("all_versions",)
    ALL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    all_versions: bool
    def __init__(self, all_versions: _Optional[bool] = ...) -> None: ...

class ListVerifiersResponse(_message.Message):
    __slots__ = ("verifiers",)
    VERIFIERS_FIELD_NUMBER: _ClassVar[int]
    verifiers: _containers.RepeatedCompositeFieldContainer[VerifierInfo]
    def __init__(self, verifiers: _Optional[_Iterable[_Union[VerifierInfo, _Mapping]]] = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("name", "config", "run_id", "replay_of", "replay_of_team")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAY_OF_FIELD_NUMBER: _ClassVar[int]
    REPLAY_OF_TEAM_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: _struct_pb2.Struct
    run_id: str
    replay_of: str
    replay_of_team: str
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., run_id: _Optional[str] = ..., replay_of: _Optional[str] = ..., replay_of_team: _Optional[str] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("run_id", "name", "state", "created_at", "finished_at", "last_step", "score_count", "config", "team", "replay_of", "summary")
    class SummaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_STEP_FIELD_NUMBER: _ClassVar[int]
    SCORE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    REPLAY_OF_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    state: str
    created_at: str
    finished_at: str
    last_step: int
    score_count: int
    config: _struct_pb2.Struct
    team: str
    replay_of: str
    summary: _containers.ScalarMap[str, float]
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[str] = ..., created_at: _Optional[str] = ..., finished_at: _Optional[str] = ..., last_step: _Optional[int] = ..., score_count: _Optional[int] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., team: _Optional[str] = ..., replay_of: _Optional[str] = ..., summary: _Optional[_Mapping[str, float]] = ...) -> None: ...

class LogStepRequest(_message.Message):
    __slots__ = ("run_id", "step", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: int
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class LogStepResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FinishRunRequest(_message.Message):
    __slots__ = ("run_id", "state", "summary")
    class SummaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    state: str
    summary: _containers.ScalarMap[str, float]
    def __init__(self, run_id: _Optional[str] = ..., state: _Optional[str] = ..., summary: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("limit", "team")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    limit: int
    team: str
    def __init__(self, limit: _Optional[int] = ..., team: _Optional[str] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id", "team")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    team: str
    def __init__(self, run_id: _Optional[str] = ..., team: _Optional[str] = ...) -> None: ...

class ListStepsRequest(_message.Message):
    __slots__ = ("run_id", "team", "limit", "page_token")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    team: str
    limit: int
    page_token: str
    def __init__(self, run_id: _Optional[str] = ..., team: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class StepRecord(_message.Message):
    __slots__ = ("step", "metrics", "created_at")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STEP_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    step: int
    metrics: _containers.ScalarMap[str, float]
    created_at: str
    def __init__(self, step: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., created_at: _Optional[str] = ...) -> None: ...

class ListStepsResponse(_message.Message):
    __slots__ = ("steps", "next_page_token")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[StepRecord]
    next_page_token: str
    def __init__(self, steps: _Optional[_Iterable[_Union[StepRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetScoreRequest(_message.Message):
    __slots__ = ("score_id",)
    SCORE_ID_FIELD_NUMBER: _ClassVar[int]
    score_id: int
    def __init__(self, score_id: _Optional[int] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class QueryScoresRequest(_message.Message):
    __slots__ = ("run_id", "step_min", "step_max", "verifier", "status", "limit", "created_after", "created_before", "reward_min", "reward_max", "include_texts", "team")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_MIN_FIELD_NUMBER: _ClassVar[int]
    STEP_MAX_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    REWARD_MIN_FIELD_NUMBER: _ClassVar[int]
    REWARD_MAX_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TEXTS_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step_min: int
    step_max: int
    verifier: str
    status: Status
    limit: int
    created_after: str
    created_before: str
    reward_min: float
    reward_max: float
    include_texts: bool
    team: str
    def __init__(self, run_id: _Optional[str] = ..., step_min: _Optional[int] = ..., step_max: _Optional[int] = ..., verifier: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., limit: _Optional[int] = ..., created_after: _Optional[str] = ..., created_before: _Optional[str] = ..., reward_min: _Optional[float] = ..., reward_max: _Optional[float] = ..., include_texts: _Optional[bool] = ..., team: _Optional[str] = ...) -> None: ...

class ScoreRecord(_message.Message):
    __slots__ = ("score_id", "run_id", "step", "group_id", "sample_index", "sample_id", "verifier", "verifier_version", "params_hash", "weight", "status", "reward", "reason", "latency_ms", "prompt_sha256", "completion_sha256", "reference_sha256", "created_at", "total_reward", "team", "request_id", "component_index", "params_json", "worker", "cached", "gate", "spec_name", "spec_version", "total_status", "prompt", "completion", "reference_json", "texts_dropped")
    SCORE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_HASH_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_SHA256_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_REWARD_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_JSON_FIELD_NUMBER: _ClassVar[int]
    TEXTS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    score_id: int
    run_id: str
    step: int
    group_id: str
    sample_index: int
    sample_id: str
    verifier: str
    verifier_version: str
    params_hash: str
    weight: float
    status: Status
    reward: float
    reason: str
    latency_ms: float
    prompt_sha256: str
    completion_sha256: str
    reference_sha256: str
    created_at: str
    total_reward: float
    team: str
    request_id: str
    component_index: int
    params_json: str
    worker: str
    cached: bool
    gate: bool
    spec_name: str
    spec_version: int
    total_status: Status
    prompt: str
    completion: str
    reference_json: str
    texts_dropped: bool
    def __init__(self, score_id: _Optional[int] = ..., run_id: _Optional[str] = ..., step: _Optional[int] = ..., group_id: _Optional[str] = ..., sample_index: _Optional[int] = ..., sample_id: _Optional[str] = ..., verifier: _Optional[str] = ..., verifier_version: _Optional[str] = ..., params_hash: _Optional[str] = ..., weight: _Optional[float] = ..., status: _Optional[_Union[Status, str]] = ..., reward: _Optional[float] = ..., reason: _Optional[str] = ..., latency_ms: _Optional[float] = ..., prompt_sha256: _Optional[str] = ..., completion_sha256: _Optional[str] = ..., reference_sha256: _Optional[str] = ..., created_at: _Optional[str] = ..., total_reward: _Optional[float] = ..., team: _Optional[str] = ..., request_id: _Optional[str] = ..., component_index: _Optional[int] = ..., params_json: _Optional[str] = ..., worker: _Optional[str] = ..., cached: _Optional[bool] = ..., gate: _Optional[bool] = ..., spec_name: _Optional[str] = ..., spec_version: _Optional[int] = ..., total_status: _Optional[_Union[Status, str]] = ..., prompt: _Optional[str] = ..., completion: _Optional[str] = ..., reference_json: _Optional[str] = ..., texts_dropped: _Optional[bool] = ...) -> None: ...

class StoredSpec(_message.Message):
    __slots__ = ("name", "version", "spec", "description", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    spec: RewardSpec
    description: str
    created_at: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., spec: _Optional[_Union[RewardSpec, _Mapping]] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class PutSpecRequest(_message.Message):
    __slots__ = ("name", "spec", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: RewardSpec
    description: str
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[RewardSpec, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class GetSpecRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListSpecsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSpecsResponse(_message.Message):
    __slots__ = ("specs",)
    SPECS_FIELD_NUMBER: _ClassVar[int]
    specs: _containers.RepeatedCompositeFieldContainer[StoredSpec]
    def __init__(self, specs: _Optional[_Iterable[_Union[StoredSpec, _Mapping]]] = ...) -> None: ...

class DryRunRequest(_message.Message):
    __slots__ = ("sample", "spec")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    sample: Sample
    spec: RewardSpec
    def __init__(self, sample: _Optional[_Union[Sample, _Mapping]] = ..., spec: _Optional[_Union[RewardSpec, _Mapping]] = ...) -> None: ...

class DryRunResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: SampleResult
    def __init__(self, result: _Optional[_Union[SampleResult, _Mapping]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Stats(_message.Message):
    __slots__ = ("cache_hits", "cache_misses", "cache_hit_rate", "score_rows_written", "score_rows_pending", "team", "replica")
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    SCORE_ROWS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    SCORE_ROWS_PENDING_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    cache_hits: int
    cache_misses: int
    cache_hit_rate: float
    score_rows_written: int
    score_rows_pending: int
    team: str
    replica: str
    def __init__(self, cache_hits: _Optional[int] = ..., cache_misses: _Optional[int] = ..., cache_hit_rate: _Optional[float] = ..., score_rows_written: _Optional[int] = ..., score_rows_pending: _Optional[int] = ..., team: _Optional[str] = ..., replica: _Optional[str] = ...) -> None: ...
