"""The MaskViM paper's published numbers (AAAI 2025), transcribed once from its text into CSV.

One CSV per table (package data). Every file keeps the row label exactly as printed (`row_label`),
the table number, and one column per target in the paper's column order: dataset ids of design §2
(`bdd`, `mapillary`, `gtav`, `synthia`, `cityscapes`) or, for Table 2, the imagecorruptions names.
`average` is the paper's printed Average; a dash in the paper is an empty cell (NaN here).
Ablation tables (6-8) also carry `variant`, the name of our variant (benchmark.variants) that the row
corresponds to, and a `note` where the paper contradicts itself.

The ablation tables' columns are B, M, G, S and their MaskViM row equals Table 3's MaskViM row, so
the paper's ablations were run in the Cityscapes-to-others setting.
Figures 5 and 6 are images without numbers in the text, so no values are transcribed for them.
"""
from __future__ import annotations

import functools
from importlib import resources

import pandas as pd

TABLE_FILES: dict[int, str] = {
    2: "table2_cityscapes_c.csv",
    3: "table3_cityscapes.csv",
    4: "table4_mapillary.csv",
    5: "table5_gta.csv",
    6: "table6_mask_placement.csv",
    7: "table7_components.csv",
    8: "table8_losses.csv",
}
SETTING_TABLES: dict[str, int] = {"cityscapes-c": 2, "cityscapes": 3, "mapillary": 4, "gta": 5}
ABLATION_TABLES: tuple[int, ...] = (6, 7, 8)
# The setting the paper's ablations (Tab. 6-8, Fig. 5) ran in: their columns are B, M, G, S.
ABLATION_SETTING = "cityscapes"
# Fig. 6 compares with / without mask in these two settings (Fig. 6 (a), (b)).
FIGURE6_SETTINGS: tuple[str, ...] = ("cityscapes", "gta")

# Columns that describe a row rather than hold an mIoU.
META_COLUMNS: tuple[str, ...] = ("table", "row_label", "method", "backbone", "encoder", "decoder",
                                 "component", "variant", "note")
AVERAGE = "average"

# The paper's only statement on efficiency (its Table 1 is missing from the text we have).
EFFICIENCY_CLAIM = ("Despite having nearly identical #Params, our method achieves almost three times "
                    "fewer FLOPs and a tenfold increase in mIoU.")
EFFICIENCY_CLAIM_SOURCE = "MaskViM paper, Experiments / Efficiency (comparison with UperNet, Tab. 1)"

# The paper's numbers follow mmsegmentation's mIoU (a class counts if in GT or prediction).
@functools.lru_cache(maxsize=None)
def _read(table: int) -> pd.DataFrame:
    if table not in TABLE_FILES:
        raise ValueError(f"the paper has no transcribed Table {table}; known: {sorted(TABLE_FILES)}")
    with resources.files(__name__).joinpath(TABLE_FILES[table]).open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, keep_default_na=False, na_values=[""], dtype=str)
    for col in df.columns:
        if col in META_COLUMNS:
            df[col] = df[col].fillna("")
        else:
            df[col] = pd.to_numeric(df[col], errors="raise")
    df["table"] = df["table"].astype(int)
    return df


def load_paper_table(table: int) -> pd.DataFrame:
    """The paper's Table `table` (2-8) as printed, one row per printed row (a copy: safe to modify)."""
    return _read(table).copy()


def target_columns(table: int) -> list[str]:
    """The value columns of a table in the paper's order, without `average`."""
    return [c for c in _read(table).columns if c not in META_COLUMNS and c != AVERAGE]


def paper_setting_table(setting: str) -> pd.DataFrame:
    """The paper's table for a setting id (`gta`, `cityscapes`, `mapillary`, `cityscapes-c`)."""
    if setting not in SETTING_TABLES:
        raise ValueError(f"unknown setting {setting!r}; the paper has tables for {sorted(SETTING_TABLES)}")
    return load_paper_table(SETTING_TABLES[setting])


def paper_row(table: int, variant: str) -> pd.DataFrame:
    """The rows of an ablation table that correspond to our variant `variant` (may be several)."""
    if table not in ABLATION_TABLES:
        raise ValueError(f"Table {table} is not an ablation table; ablation tables: {ABLATION_TABLES}")
    df = _read(table)
    return df[df["variant"] == variant].copy()
