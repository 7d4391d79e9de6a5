from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecuteRequest(_message.Message):
    __slots__ = ("retriever_id", "alias_name", "inputs", "limit", "user_id", "session_id")
    RETRIEVER_ID_FIELD_NUMBER: _ClassVar[int]
    ALIAS_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    retriever_id: str
    alias_name: str
    inputs: _struct_pb2.Struct
    limit: int
    user_id: str
    session_id: str
    def __init__(self, retriever_id: _Optional[str] = ..., alias_name: _Optional[str] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., limit: _Optional[int] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document_id", "collection_id", "score", "payload", "root_object_id", "lineage_path", "leg_scores")
    class LegScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ROOT_OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    LEG_SCORES_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    collection_id: str
    score: float
    payload: _struct_pb2.Struct
    root_object_id: str
    lineage_path: _struct_pb2.Value
    leg_scores: _containers.ScalarMap[str, float]
    def __init__(self, document_id: _Optional[str] = ..., collection_id: _Optional[str] = ..., score: _Optional[float] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., root_object_id: _Optional[str] = ..., lineage_path: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., leg_scores: _Optional[_Mapping[str, float]] = ...) -> None: ...

class StageReport(_message.Message):
    __slots__ = ("stage_name", "stage_id", "stage_type", "input_count", "output_count", "duration_ms", "cache_hit", "pushed_down")
    STAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUT_COUNT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COUNT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    PUSHED_DOWN_FIELD_NUMBER: _ClassVar[int]
    stage_name: str
    stage_id: str
    stage_type: str
    input_count: int
    output_count: int
    duration_ms: float
    cache_hit: bool
    pushed_down: bool
    def __init__(self, stage_name: _Optional[str] = ..., stage_id: _Optional[str] = ..., stage_type: _Optional[str] = ..., input_count: _Optional[int] = ..., output_count: _Optional[int] = ..., duration_ms: _Optional[float] = ..., cache_hit: _Optional[bool] = ..., pushed_down: _Optional[bool] = ...) -> None: ...

class CacheReport(_message.Message):
    __slots__ = ("execution_hit", "stage_hits", "query_embedding_hits", "enabled")
    class StageHitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    class QueryEmbeddingHitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    EXECUTION_HIT_FIELD_NUMBER: _ClassVar[int]
    STAGE_HITS_FIELD_NUMBER: _ClassVar[int]
    QUERY_EMBEDDING_HITS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    execution_hit: bool
    stage_hits: _containers.ScalarMap[str, bool]
    query_embedding_hits: _containers.ScalarMap[str, bool]
    enabled: bool
    def __init__(self, execution_hit: _Optional[bool] = ..., stage_hits: _Optional[_Mapping[str, bool]] = ..., query_embedding_hits: _Optional[_Mapping[str, bool]] = ..., enabled: _Optional[bool] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("retriever_id", "retriever_name", "results", "stages", "feature_uris", "cache", "duration_ms", "alias_name", "served_by", "variant")
    RETRIEVER_ID_FIELD_NUMBER: _ClassVar[int]
    RETRIEVER_NAME_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_URIS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ALIAS_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    retriever_id: str
    retriever_name: str
    results: _containers.RepeatedCompositeFieldContainer[Document]
    stages: _containers.RepeatedCompositeFieldContainer[StageReport]
    feature_uris: _containers.RepeatedScalarFieldContainer[str]
    cache: CacheReport
    duration_ms: float
    alias_name: str
    served_by: str
    variant: str
    def __init__(self, retriever_id: _Optional[str] = ..., retriever_name: _Optional[str] = ..., results: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., stages: _Optional[_Iterable[_Union[StageReport, _Mapping]]] = ..., feature_uris: _Optional[_Iterable[str]] = ..., cache: _Optional[_Union[CacheReport, _Mapping]] = ..., duration_ms: _Optional[float] = ..., alias_name: _Optional[str] = ..., served_by: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...
