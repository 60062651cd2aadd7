"""Fargate sizing rules: which cpu/memory pairs AWS accepts, and sensible defaults.

Fargate only runs a fixed menu of task sizes; anything else fails at RegisterTaskDefinition
(or, worse, at RunTask) with an error that does not say what *would* work. We check the pair
before any AWS call and list the valid memory values for the requested cpu.

The table: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html
(also "Task size" in https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html).
"""

from __future__ import annotations

from ..exceptions import FargateSizeError

GIB = 1024

# Prefect-aws defaults, used when neither cpu nor memory is set.
DEFAULT_CPU = 1024
DEFAULT_MEMORY = 2048


def _steps(low_gib: int, high_gib: int, step_gib: int) -> tuple[int, ...]:
    return tuple(g * GIB for g in range(low_gib, high_gib + 1, step_gib))


# cpu units -> valid memory MiB, in increasing order.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _steps(1, 4, 1),
    1024: _steps(2, 8, 1),
    2048: _steps(4, 16, 1),
    4096: _steps(8, 30, 1),
    8192: _steps(16, 60, 4),
    16384: _steps(32, 120, 8),
}


def fargate_memory_options(cpu: int) -> list[int]:
    """Valid Fargate memory values (MiB) for ``cpu`` units; empty for an invalid cpu."""
    return list(FARGATE_SIZES.get(int(cpu), ()))


def format_memory_options(options: list[int] | tuple[int, ...]) -> str:
    """Every valid value, spelled out, so the user can copy one from the error message."""
    return ", ".join(str(m) for m in options)


def cpu_for_memory(memory: int) -> int | None:
    """The smallest Fargate cpu that accepts ``memory`` MiB, or None when none does."""
    for cpu, options in FARGATE_SIZES.items():
        if int(memory) in options:
            return cpu
    return None


def default_fargate_size(cpu: int | None, memory: int | None) -> tuple[int, int]:
    """Fill in whichever of cpu/memory is unset so that the pair stays a valid Fargate size.

    Prefect defaults each independently (1024 / 2048), so ``cpu=4096`` alone became the invalid
    pair 4096/2048. We pick the smallest memory for the cpu, or the default/smallest cpu for the
    memory, instead.
    """
    if cpu is None and memory is None:
        return DEFAULT_CPU, DEFAULT_MEMORY
    if memory is None:
        options = fargate_memory_options(cpu)
        return int(cpu), options[0] if options else DEFAULT_MEMORY
    if cpu is None:
        if int(memory) in FARGATE_SIZES[DEFAULT_CPU]:
            return DEFAULT_CPU, int(memory)
        return cpu_for_memory(memory) or DEFAULT_CPU, int(memory)
    return int(cpu), int(memory)


def check_fargate_size(cpu: int, memory: int, *, cpu_field: str = "cpu", memory_field: str = "memory") -> None:
    """Raise :class:`FargateSizeError` naming the field and the valid values when the pair is invalid."""
    if int(cpu) not in FARGATE_SIZES:
        valid = ", ".join(str(c) for c in FARGATE_SIZES)
        raise FargateSizeError(
            f"{cpu_field}={cpu} is not a Fargate cpu size; use one of {valid} "
            "(see https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html)",
            field=cpu_field,
        )
    options = FARGATE_SIZES[int(cpu)]
    if int(memory) not in options:
        hint = cpu_for_memory(memory)
        also = f", or set cpu={hint} for memory={memory}" if hint else ""
        raise FargateSizeError(
            f"{memory_field}={memory} is not valid with cpu={cpu} on Fargate; valid memory values for "
            f"cpu={cpu} are {format_memory_options(options)} (MiB){also}",
            field=memory_field,
        )
