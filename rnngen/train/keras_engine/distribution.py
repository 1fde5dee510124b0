"""Training one model over several devices or machines with tf.distribute (--distribute).

A strategy runs the same training step on every replica (a GPU, a CPU device, a worker machine),
each on its share of the global batch, and adds their gradients up. Done naively that is not the
one-device update: Keras averages each replica's own mean loss, so a replica holding fewer targets
weighs as much as one holding many, and it clips each replica's gradient before the sum. Here each
global batch (as many lines as asked for, fewer when lines are long, the last one short) is cut into
equal row shards, padded with empty rows that have no targets; the loss divides by the global batch's
number of targets, and clipping applies to the summed gradient. One step is then the one-device step,
up to rounding.

Only the TensorFlow backend has these strategies; nothing here imports TensorFlow before one is asked
for, so rnngen still imports on a JAX or PyTorch machine.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngen.config import DistributeKind, EngineKind, ExecutionConfig
from rnngen.data.batches import Batches
from rnngen.errors import RnngenError, UsageError
from rnngen.train.interrupts import STOP_SIGNALS
from rnngen.train.keras_engine.backend import import_keras
from rnngen.train.keras_engine.devices import GPU, dtype_policy_name, select_device
from rnngen.train.keras_engine.metrics import target_weights

keras = import_keras()

TF_CONFIG = "TF_CONFIG"
# The job types of TF_CONFIG that synchronous multi-worker training uses; the chief is a worker too.
WORKER_JOBS = ("chief", "worker")


@dataclass(frozen=True)
class ClusterTask:
    """This process's place in a multi-worker cluster."""

    workers: int  # chief included
    task_type: str  # "chief" or "worker"
    task_index: int
    has_chief: bool  # whether the cluster names a chief apart from its workers

    @property
    def chief(self) -> bool:
        """Whether this worker saves: the "chief" task, or else worker 0 (TensorFlow's convention)."""
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_index == 0 and not self.has_chief)


def _tf_config_error(problem: str) -> UsageError:
    return UsageError(
        f"--distribute multiworker: {problem}; set TF_CONFIG on each machine to "
        '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": N}} '
        "(see the README)"
    )


def cluster_task(environment: Mapping[str, str] | None = None) -> ClusterTask:
    """Read and check TF_CONFIG, the cluster description MultiWorkerMirroredStrategy reads too."""
    environment = os.environ if environment is None else environment
    text = environment.get(TF_CONFIG, "").strip()
    if not text:
        raise _tf_config_error("TF_CONFIG is not set")
    try:
        config = json.loads(text)
    except ValueError as error:
        raise _tf_config_error(f"TF_CONFIG is not valid JSON ({error})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise _tf_config_error('TF_CONFIG needs a "cluster" object and a "task" object')
    other_jobs = sorted(set(cluster) - set(WORKER_JOBS))
    if other_jobs:
        raise _tf_config_error(f"job type(s) {', '.join(other_jobs)} in TF_CONFIG are not used here (only workers)")
    for job, addresses in cluster.items():
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(address, str) and address.rpartition(":")[2].isdigit() for address in addresses)
        ):
            raise _tf_config_error(f'the "{job}" job in TF_CONFIG must be a list of "host:port" addresses')
    if len(cluster.get("chief", [])) > 1:
        raise _tf_config_error("TF_CONFIG may name one chief at most")
    task_type, task_index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise _tf_config_error(f'the task type {task_type!r} in TF_CONFIG is not a job of its "cluster"')
    if type(task_index) is not int or not 0 <= task_index < len(cluster[task_type]):
        raise _tf_config_error(
            f'the task index {task_index!r} in TF_CONFIG is not a position in its "{task_type}" list'
        )
    workers = sum(len(cluster.get(job, [])) for job in WORKER_JOBS)
    return ClusterTask(workers=workers, task_type=str(task_type), task_index=task_index, has_chief="chief" in cluster)


@dataclass(frozen=True)
class Placement:
    """Where a training run computes: its strategy (None on one device), device and dtype policy."""

    strategy: Any  # a tf.distribute.Strategy, or None
    device: str  # "gpu" or "cpu"
    dtype_policy: str  # the Keras dtype policy layers compute with
    replicas: int = 1  # replicas in sync, over all workers
    workers: int = 1
    chief: bool = True  # whether this process writes the model folder and the checkpoints

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where variables must be created (the model, its optimizer) to be mirrored on every replica."""
        return contextlib.nullcontext() if self.strategy is None else self.strategy.scope()

    def to_json(self, execution: ExecutionConfig) -> dict[str, Any]:
        """The execution record of config.json, for the Keras engine."""
        return {
            "engine": EngineKind.keras.value,
            "engine_requested": execution.engine.value,
            "distribute": execution.distribute.value,
            "device": self.device,
            "precision": execution.precision.value,
            "xla": execution.xla.value,
            "dtype_policy": self.dtype_policy,
            "replicas": self.replicas,
            "workers": self.workers,
        }


def place_training(execution: ExecutionConfig) -> Placement:
    """Choose the device and precision and create the strategy, before TensorFlow runs anything
    (MultiWorkerMirroredStrategy must exist before the first operation, and GPUs can only be hidden
    until then)."""
    backend = keras.backend.backend()
    if execution.distribute is not DistributeKind.none and backend != "tensorflow":
        raise UsageError(
            f"--distribute {execution.distribute.value} needs Keras's TensorFlow backend "
            f"(KERAS_BACKEND is {backend}); train with --distribute none"
        )
    task = cluster_task() if execution.distribute is DistributeKind.multiworker else None
    device = select_device(execution.device)
    policy = dtype_policy_name(execution.precision, device)
    if execution.distribute is DistributeKind.none:
        return Placement(None, device, policy)

    import tensorflow as tf

    if execution.distribute is DistributeKind.mirrored:
        # Every GPU; on a CPU machine every CPU device (one, unless the process split it into
        # logical devices as the tests do), so --distribute mirrored still runs there.
        names = [logical.name for logical in tf.config.list_logical_devices("GPU" if device == GPU else "CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=names)
        return Placement(strategy, device, policy, replicas=strategy.num_replicas_in_sync)
    assert task is not None
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as error:
        raise RnngenError(f"--distribute multiworker: TensorFlow could not join the cluster ({error})") from None
    return Placement(
        strategy, device, policy, replicas=strategy.num_replicas_in_sync, workers=task.workers, chief=task.chief
    )


def row_shard(array: np.ndarray, replica: int, replicas: int) -> np.ndarray:
    """Replica ``replica``'s rows of a global batch: equal shares, the last ones completed with rows of
    zeros (padding inputs, no targets), so that every replica gets the same shape even when the batch
    has fewer rows than there are replicas."""
    per_replica = -(-len(array) // replicas)
    shard = array[replica * per_replica : (replica + 1) * per_replica]
    missing = per_replica - len(shard)
    if missing:
        shard = np.concatenate([shard, np.zeros((missing, *array.shape[1:]), dtype=array.dtype)])
    return shard


def replica_shards(batches: Batches, epoch: int, replicas: int, own: range) -> Iterator[tuple[Any, ...]]:
    """The shards of the replicas in ``own``, batch after batch, of epoch ``epoch``.

    The batches come in the epoch's own (seed, epoch) order, so each worker cuts the same global
    batches. A copy of the batches keeps this epoch's order its own (tf.data may still be reading
    ahead when the next epoch's pass begins).
    """
    epoch_batches = copy.copy(batches)
    epoch_batches.set_epoch(epoch)
    for index in range(len(epoch_batches)):
        inputs, targets = epoch_batches.batch(index)
        for replica in own:
            yield row_shard(inputs, replica, replicas), row_shard(targets, replica, replicas)


def distributed_batches(strategy: Any, batches: Batches, epoch: int) -> Any:
    """A tf.distribute dataset handing each replica its shard of every global batch of epoch ``epoch``.

    Keras's own path for a PyDataset under a strategy splits batches unevenly (a replica may get no
    rows), and across workers hands out whole batches, so that a step's batch is several times the
    size asked for and workers can run out of batches at different steps. Here every worker builds
    every global batch and keeps its replicas' shards; TensorFlow deals a worker's elements to its
    replicas in turn.
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    inputs, targets = batches.batch(0)
    # Rows and time vary from batch to batch: every dimension is left free.
    signature = (
        tf.TensorSpec((None,) * inputs.ndim, tf.as_dtype(inputs.dtype)),
        tf.TensorSpec((None,) * targets.ndim, tf.as_dtype(targets.dtype)),
    )

    def worker_dataset(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        own = range(context.input_pipeline_id * local, (context.input_pipeline_id + 1) * local)
        dataset = tf.data.Dataset.from_generator(
            lambda: replica_shards(batches, epoch, replicas, own), output_signature=signature
        )
        return dataset.prefetch(2 * local)

    return strategy.distribute_datasets_from_function(worker_dataset)


def adapt_to_strategy(model: Any, strategy: Any, batch: tuple[np.ndarray, np.ndarray]) -> None:
    """Work around two failures of Keras's TensorFlow trainer (Keras 3.15, TensorFlow 2.21) under
    MultiWorkerMirroredStrategy, tensorflow/tensorflow#72388; harmless under the other strategies.

    - Before training, ``fit`` builds the optimizer and metrics from a peek at the distributed data,
      reducing the (inputs, targets) pair as one value, which MultiWorkerMirroredStrategy cannot.
      Given a batch, it builds from that instead (only ranks and dtypes matter), without a peek.
    - After each step it averages the step's logs over the workers "along axis 0", which scalars do
      not have: there each log value is given a leading axis of one. (These per-step values only
      feed the progress display; the epoch's figures are read from the metrics' summed state.)
    """
    keras_build = model._maybe_symbolic_build

    def build(iterator: Any = None, data_batch: Any = None) -> Any:
        return keras_build(data_batch=batch if data_batch is None else data_batch)

    model._maybe_symbolic_build = build
    if not strategy.extended._in_multi_worker_mode():
        return
    keras_metrics = model.compute_metrics

    def compute_metrics(*args: Any, **kwargs: Any) -> dict[str, Any]:
        results = keras_metrics(*args, **kwargs)
        return {name: keras.ops.reshape(value, (1,)) for name, value in results.items()}

    model.compute_metrics = compute_metrics


class ShardedCrossEntropy(keras.losses.Loss):  # type: ignore[name-defined]
    """Cross-entropy (from logits) per target of the whole global batch, on one replica's shard.

    Returns this shard's nats over the global batch's number of targets, so the replicas' gradients
    add up to the gradient of the global batch's mean, as on one device. Padding targets (id 0, or an
    all-zero one-hot row) count for nothing. Keras scales "sum" reductions by nothing, so the sum of
    the replicas' values is the batch loss itself.
    """

    def __init__(self, sparse: bool, name: str = "cross_entropy_loss") -> None:
        super().__init__(name=name, reduction="sum", dtype="float32")
        self.sparse = sparse

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        import tensorflow as tf

        ops = keras.ops
        logits = ops.cast(y_pred, "float32")  # float32 even under mixed precision
        if self.sparse:  # y_true (rows, time) ids, logits (rows, time, vocab)
            nats = keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
        else:  # y_true (rows, vocab) one-hot, logits (rows, vocab)
            y_true = ops.cast(y_true, "float32")
            nats = keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
        real = target_weights(y_true, self.sparse, "float32")
        count = ops.sum(real)
        context = tf.distribute.get_replica_context()
        if context is not None:  # None in cross-replica context, where there is nothing to add up
            count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        return ops.sum(nats * real) / ops.maximum(count, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"sparse": self.sparse, "name": self.name}


class SummedGradientClippingAdam(keras.optimizers.Adam):  # type: ignore[name-defined]
    """Adam whose global-norm clipping applies to the gradient of the whole global batch.

    Keras clips each replica's gradient on its own and adds them up afterwards, which under a
    strategy clips at another norm than one device would. Here the replicas' gradients are added up
    first, clipped, and each replica hands on its share of the clipped sum (which Keras adds up
    again): one more all-reduce a step, for the one-device update.
    """

    def _clip_gradients(self, grads: list[Any]) -> list[Any]:
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if not self.global_clipnorm or context is None or context.num_replicas_in_sync == 1:
            return super()._clip_gradients(grads)
        present = [index for index, gradient in enumerate(grads) if gradient is not None]
        # Dense, as Keras's own clipping makes them: an embedding's gradient arrives as the rows
        # looked up (tf.IndexedSlices, a row once per lookup), which Adam would otherwise update
        # sparsely, as no single-device run does.
        dense = [tf.convert_to_tensor(grads[index]) for index in present]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, dense)
        clipped, _ = tf.clip_by_global_norm(summed, self.global_clipnorm)
        share = 1.0 / context.num_replicas_in_sync
        result = list(grads)
        for index, gradient in zip(present, clipped, strict=True):
            result[index] = gradient * share
        return result


def agreed_stop_signal(strategy: Any, caught: list[int]) -> int | None:
    """The stop signal any worker caught, agreed by all of them at the same batch end, so that all stop
    after the same batch: a worker stopping alone would leave the others waiting for it in the next
    step's all-reduce, and Ctrl-C on the chief's terminal stops the whole cluster."""
    import tensorflow as tf

    # How many workers caught each stop signal: a value per replica, so that adding them up really
    # asks every worker (a plain value would be taken to be the same everywhere).
    mine = [int(number in caught) for number in STOP_SIGNALS]
    values = strategy.experimental_distribute_values_from_function(lambda context: tf.constant(mine))
    counts = strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None).numpy()
    for signal_number, count in zip(STOP_SIGNALS, counts, strict=True):
        if count:
            return signal_number
    return None
