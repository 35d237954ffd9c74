"""The metastore's referential model: which row refers to which, which references HMS
cannot serve an object without, which rows belong to exactly one owner.

Read from the database itself (its ``pg_constraint`` foreign keys, whatever schema version
is there) and completed with what Hive's ``package.jdo`` and ``ObjectStore`` require but no
constraint enforces: a table needs its database and storage descriptor, a storage
descriptor its serde (``ObjectStore.convertToSerDeInfo`` throws "Invalid SerDeInfo object")
and its column descriptor (without one HMS serves the table with no columns), a partition
its table and storage descriptor. ``dependent="true"`` fields make a storage descriptor
belong to one table, partition or index and a serde to one storage descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg

from drtests.postgres import public_tables


@dataclass(frozen=True)
class Relation:
    """``child.column`` refers to ``parent.parent_column``."""

    child: str
    column: str
    parent: str
    parent_column: str
    #: HMS cannot serve the child's object when the reference is NULL
    required: bool = False
    #: the parent row belongs to this one child row (package.jdo ``dependent="true"``)
    owned: bool = False
    #: the child row is a part of its parent (its column, parameter, key value): it has no
    #: life of its own, so it does not count as a use of the parent
    part_of: bool = False
    #: a foreign key of this database declares it
    declared: bool = False

    @property
    def name(self) -> str:
        return f"{self.child}.{self.column} -> {self.parent}"

    @property
    def dangling(self) -> str:
        """A condition on child rows ``c``: the reference is set and points nowhere."""
        return (
            f'c."{self.column}" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "{self.parent}" p '
            f'WHERE p."{self.parent_column}" = c."{self.column}")'
        )

    @property
    def unset(self) -> str:
        """A condition on child rows ``c``: the reference is NULL."""
        return f'c."{self.column}" IS NULL'


def _rel(child: str, column: str, parent: str, parent_column: str, **flags: bool) -> Relation:
    return Relation(child, column, parent, parent_column, **flags)


#: Relations of Hive's JDO model (package.jdo, 2.3 and 3.1), by model class and field
HMS_RELATIONS: tuple[Relation, ...] = (
    # MTable.database, MTable.sd (dependent)
    _rel("TBLS", "DB_ID", "DBS", "DB_ID", required=True),
    _rel("TBLS", "SD_ID", "SDS", "SD_ID", required=True, owned=True),
    # MPartition.table, MPartition.sd (dependent)
    _rel("PARTITIONS", "TBL_ID", "TBLS", "TBL_ID", required=True),
    _rel("PARTITIONS", "SD_ID", "SDS", "SD_ID", required=True, owned=True),
    # MIndex.origTable, MIndex.indexTable, MIndex.sd (dependent)
    _rel("IDXS", "ORIG_TBL_ID", "TBLS", "TBL_ID", required=True),
    _rel("IDXS", "INDEX_TBL_ID", "TBLS", "TBL_ID", required=True),
    _rel("IDXS", "SD_ID", "SDS", "SD_ID", required=True, owned=True),
    # MStorageDescriptor.cd, MStorageDescriptor.serDeInfo (dependent)
    _rel("SDS", "CD_ID", "CDS", "CD_ID", required=True),
    _rel("SDS", "SERDE_ID", "SERDES", "SERDE_ID", required=True, owned=True),
    # collections stored as their owner's parts
    _rel("COLUMNS_V2", "CD_ID", "CDS", "CD_ID", part_of=True),
    _rel("DATABASE_PARAMS", "DB_ID", "DBS", "DB_ID", part_of=True),
    _rel("TABLE_PARAMS", "TBL_ID", "TBLS", "TBL_ID", part_of=True),
    _rel("PARTITION_KEYS", "TBL_ID", "TBLS", "TBL_ID", part_of=True),
    _rel("PARTITION_KEY_VALS", "PART_ID", "PARTITIONS", "PART_ID", part_of=True),
    _rel("PARTITION_PARAMS", "PART_ID", "PARTITIONS", "PART_ID", part_of=True),
    _rel("SD_PARAMS", "SD_ID", "SDS", "SD_ID", part_of=True),
    _rel("SERDE_PARAMS", "SERDE_ID", "SERDES", "SERDE_ID", part_of=True),
    _rel("BUCKETING_COLS", "SD_ID", "SDS", "SD_ID", part_of=True),
    _rel("SORT_COLS", "SD_ID", "SDS", "SD_ID", part_of=True),
    _rel("SKEWED_COL_NAMES", "SD_ID", "SDS", "SD_ID", part_of=True),
    _rel("SKEWED_VALUES", "SD_ID_OID", "SDS", "SD_ID", part_of=True),
    _rel("SKEWED_VALUES", "STRING_LIST_ID_EID", "SKEWED_STRING_LIST", "STRING_LIST_ID"),
    _rel("SKEWED_COL_VALUE_LOC_MAP", "SD_ID", "SDS", "SD_ID", part_of=True),
    _rel(
        "SKEWED_COL_VALUE_LOC_MAP",
        "STRING_LIST_ID_KID",
        "SKEWED_STRING_LIST",
        "STRING_LIST_ID",
        required=True,
    ),
    _rel(
        "SKEWED_STRING_LIST_VALUES",
        "STRING_LIST_ID",
        "SKEWED_STRING_LIST",
        "STRING_LIST_ID",
        part_of=True,
    ),
    _rel("INDEX_PARAMS", "INDEX_ID", "IDXS", "INDEX_ID", part_of=True),
    # MTableColumnStatistics.table, MPartitionColumnStatistics.partition
    _rel("TAB_COL_STATS", "TBL_ID", "TBLS", "TBL_ID", required=True),
    _rel("PART_COL_STATS", "PART_ID", "PARTITIONS", "PART_ID", required=True),
    # MFunction.database, MFunction.resourceUris
    _rel("FUNCS", "DB_ID", "DBS", "DB_ID", required=True),
    _rel("FUNC_RU", "FUNC_ID", "FUNCS", "FUNC_ID", part_of=True),
    # MConstraint.parentTable / childTable / parentColumn / childColumn
    _rel("KEY_CONSTRAINTS", "PARENT_TBL_ID", "TBLS", "TBL_ID", required=True),
    _rel("KEY_CONSTRAINTS", "CHILD_TBL_ID", "TBLS", "TBL_ID"),
    _rel("KEY_CONSTRAINTS", "PARENT_CD_ID", "CDS", "CD_ID"),
    _rel("KEY_CONSTRAINTS", "CHILD_CD_ID", "CDS", "CD_ID"),
    # privileges
    _rel("DB_PRIVS", "DB_ID", "DBS", "DB_ID", required=True),
    _rel("TBL_PRIVS", "TBL_ID", "TBLS", "TBL_ID", required=True),
    _rel("TBL_COL_PRIVS", "TBL_ID", "TBLS", "TBL_ID", required=True),
    _rel("PART_PRIVS", "PART_ID", "PARTITIONS", "PART_ID", required=True),
    _rel("PART_COL_PRIVS", "PART_ID", "PARTITIONS", "PART_ID", required=True),
    _rel("ROLE_MAP", "ROLE_ID", "ROLES", "ROLE_ID", required=True),
)

_DECLARED = """
SELECT src.relname, a.attname, dst.relname, b.attname, a.attnum = ANY (coalesce(pk.conkey, '{}'))
FROM pg_constraint fk
JOIN pg_class src ON src.oid = fk.conrelid
JOIN pg_class dst ON dst.oid = fk.confrelid
JOIN pg_attribute a ON a.attrelid = fk.conrelid AND a.attnum = fk.conkey[1]
JOIN pg_attribute b ON b.attrelid = fk.confrelid AND b.attnum = fk.confkey[1]
LEFT JOIN pg_constraint pk ON pk.conrelid = fk.conrelid AND pk.contype = 'p'
WHERE fk.contype = 'f' AND cardinality(fk.conkey) = 1
  AND src.relnamespace = 'public'::regnamespace AND dst.relnamespace = 'public'::regnamespace
"""


@dataclass(frozen=True)
class Model:
    relations: tuple[Relation, ...]

    def into(self, parent: str) -> list[Relation]:
        return [r for r in self.relations if r.parent == parent]

    def users(self, parent: str) -> list[Relation]:
        """The relations whose child rows use a row of ``parent`` (its parts do not)."""
        return [r for r in self.into(parent) if not r.part_of]

    def of(self, child: str) -> list[Relation]:
        return [r for r in self.relations if r.child == child]


def read_model(conn: psycopg.Connection[Any]) -> Model:
    """The database's declared foreign keys, with Hive's model for the tables present."""
    present = public_tables(conn)
    relations: dict[tuple[str, str, str], Relation] = {
        (r.child, r.column, r.parent): r
        for r in HMS_RELATIONS
        if r.child in present and r.parent in present
    }
    for child, column, parent, parent_column, in_key in conn.execute(_DECLARED).fetchall():
        key = (str(child), str(column), str(parent))
        known = relations.get(key)
        if known is not None:
            relations[key] = replace(known, declared=True)
        else:
            relations[key] = Relation(
                str(child),
                str(column),
                str(parent),
                str(parent_column),
                part_of=bool(in_key),
                declared=True,
            )
    return Model(tuple(sorted(relations.values(), key=lambda r: (r.child, r.column))))
