"""The simulated city: its five areas, their industries, and each industry's meters and magnitudes.

Areas and the industries named for them follow the city's policy (DOMAIN.md §1).
Industry codes are GB/T 4754-2017 classes. Energy intensities [tce / 10⁴ yuan of
value added] and load shapes follow DOMAIN.md §6 where it gives them (steel,
cement and building materials, optoelectronics and semiconductors, biomedicine,
agri-food); the equipment and textile ranges are order-of-magnitude assumptions
(U) of this simulator. Carrier shares are shares of the enterprise's gross
energy in tce.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from parkdata.carriers import MeterKind, MeterPurpose


class Profile(StrEnum):
    """Daily load shape of a meter (DOMAIN.md §6 shift templates)."""

    CONTINUOUS = "continuous"  # 24/7 process, load factor 0.85-0.95, maintenance stops
    CLEANROOM = "cleanroom"  # flat 24/7, cleanroom base 60-80 %
    OFFPEAK = "offpeak"  # continuous kiln, grinding shifted to valley-tariff hours
    SHIFT1 = "shift1"  # 08-17 weekdays, night base 20-30 %
    SHIFT2 = "shift2"  # 08-24 weekdays, night base 30-40 %
    SHIFT3 = "shift3"  # round the clock on weekdays, less at weekends
    SOLAR = "solar"  # rooftop PV


class Seasonal(StrEnum):
    NONE = "none"
    COOLING = "cooling"  # air conditioning and chillers, June-September
    HEATING = "heating"  # boilers and space heating, November-March


@dataclass(frozen=True, slots=True)
class MeterTemplate:
    """A meter an enterprise of an archetype has.

    Parameters
    ----------
    share : float
        Share of the enterprise's gross energy [tce/tce]; for water, m³ per tce.
    base : tuple of float
        Range of the idle share of peak load [-].
    optional : bool
        Only some enterprises have it (drawn per enterprise).
    """

    code: str
    carrier: str
    unit: str
    kind: MeterKind
    interval_s: int
    share: float
    base: tuple[float, float]
    profile: Profile | None = None  # None: the archetype's profile
    seasonal: Seasonal = Seasonal.NONE
    purpose: MeterPurpose = MeterPurpose.CONSUMPTION
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Industry:
    code: str  # GB/T 4754-2017 class
    name_zh: str
    product_zh: str
    product_unit: str
    energy_per_product_kgce: tuple[float, float]
    """Range of gross energy per unit of product [kgce/unit]."""
    harvest: tuple[float, ...] | None = None
    """Activity factor per calendar month (12 values, agri-food seasons)."""
    name_words: tuple[str, ...] = ()
    """Words for company names; the archetype's when empty."""


@dataclass(frozen=True, slots=True)
class Archetype:
    key: str
    name_zh: str
    profile: Profile
    intensity: tuple[float, float]
    """Range of 2022 gross intensity [tce / 10⁴ yuan], DOMAIN.md §6 (U: order of magnitude)."""
    energy_tce: tuple[float, float]
    """Range of 2022 gross energy [tce] (log-uniform)."""
    industries: tuple[Industry, ...]
    meters: tuple[MeterTemplate, ...]
    pv_share: float = 0.0
    """Share of enterprises with rooftop PV."""
    maintenance_days: tuple[int, int] = (0, 0)
    """Maintenance stops per year [days], continuous processes (DOMAIN.md §6: 3-10)."""
    name_words: tuple[str, ...] = ()


_R, _I = MeterKind.REGISTER, MeterKind.INTERVAL
_Q15, _H, _D = 900, 3600, 86400


def _el(
    code: str,
    share: float,
    base: tuple[float, float],
    *,
    profile: Profile | None = None,
    seasonal: Seasonal = Seasonal.NONE,
    optional: bool = False,
) -> MeterTemplate:
    return MeterTemplate(
        code,
        "electricity",
        "kWh",
        _R,
        _Q15,
        share,
        base,
        profile=profile,
        seasonal=seasonal,
        optional=optional,
    )


def _water(per_tce: float) -> MeterTemplate:
    return MeterTemplate("WA-01", "water", "m3", _R, _D, per_tce, (0.2, 0.3))


# Harvest and processing seasons, activity per month Jan..Dec (U).
_RICE = (0.8, 0.6, 0.7, 0.7, 0.7, 0.7, 0.8, 0.9, 1.3, 1.5, 1.6, 1.4)
_AQUATIC = (0.7, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 1.0, 1.5, 1.7, 1.6, 1.1)  # 梁子湖 crab season
_TEA = (0.3, 0.4, 1.8, 2.4, 1.9, 1.0, 0.8, 0.7, 0.7, 0.8, 0.6, 0.5)
_STARCH = (1.3, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.1, 1.4, 1.4, 1.3)

STEEL = Archetype(
    "steel",
    "钢铁",
    Profile.CONTINUOUS,
    intensity=(3.0, 5.0),
    energy_tce=(250_000.0, 600_000.0),
    industries=(Industry("3120", "炼钢", "粗钢", "t", (520.0, 580.0)),),  # CISA 2024: ≈550 kgce/t
    meters=(
        _el("EL-01", 0.07, (0.55, 0.65)),
        _el("EL-02", 0.05, (0.55, 0.65)),
        MeterTemplate("COKE-BF", "coke", "t", _I, _H, 0.55, (0.05, 0.1)),
        MeterTemplate("COAL-PCI", "washed_coal", "t", _I, _H, 0.20, (0.05, 0.1)),
        MeterTemplate("COG-01", "coke_oven_gas", "m3", _R, _H, 0.08, (0.3, 0.4)),
        MeterTemplate("NG-01", "natural_gas", "m3", _R, _H, 0.05, (0.3, 0.4), seasonal=Seasonal.HEATING),
        _water(2.0),
    ),
    maintenance_days=(3, 10),
    name_words=("钢铁", "特钢", "金属"),
)

CEMENT = Archetype(
    "cement",
    "水泥建材",
    Profile.CONTINUOUS,
    intensity=(2.0, 4.0),
    energy_tce=(40_000.0, 150_000.0),
    industries=(
        Industry("3011", "水泥制造", "水泥熟料", "t", (100.0, 115.0)),  # GB 16780-2021 clinker limits
        Industry("3041", "平板玻璃制造", "平板玻璃", "重量箱", (12.0, 14.0)),  # GB 21340-2019
    ),
    meters=(
        _el("EL-01", 0.10, (0.3, 0.4), profile=Profile.OFFPEAK),
        _el("EL-02", 0.05, (0.5, 0.6)),
        MeterTemplate("COAL-KILN", "raw_coal", "t", _I, _H, 0.80, (0.05, 0.1)),
        MeterTemplate("NG-01", "natural_gas", "m3", _R, _H, 0.04, (0.2, 0.3)),
        MeterTemplate("DSL-01", "diesel", "t", _I, _D, 0.01, (0.2, 0.3), profile=Profile.SHIFT2),
        _water(0.5),
    ),
    maintenance_days=(3, 10),
    name_words=("建材", "水泥", "新材料"),
)

SEMICONDUCTOR = Archetype(
    "semiconductor",
    "光电子与半导体",
    Profile.CLEANROOM,
    intensity=(0.05, 0.5),
    energy_tce=(3_000.0, 40_000.0),
    industries=(
        Industry("3973", "集成电路制造", "集成电路", "万块", (50.0, 90.0)),
        Industry("3974", "显示器件制造", "显示面板", "万片", (400.0, 700.0)),
        Industry("3976", "光电子器件制造", "光电子器件", "万只", (30.0, 60.0)),
        Industry("3832", "光纤制造", "光纤", "万芯千米", (20.0, 40.0)),
    ),
    meters=(
        _el("EL-01", 0.48, (0.6, 0.8), seasonal=Seasonal.COOLING),
        _el("EL-02", 0.38, (0.6, 0.8), seasonal=Seasonal.COOLING),
        MeterTemplate("NG-01", "natural_gas", "m3", _R, _H, 0.06, (0.3, 0.5), seasonal=Seasonal.HEATING),
        MeterTemplate(
            "NG-H2",
            "natural_gas",
            "m3",
            _R,
            _H,
            0.03,
            (0.5, 0.7),
            purpose=MeterPurpose.FEEDSTOCK,
            optional=True,
        ),
        MeterTemplate("ST-01", "steam", "t", _R, _H, 0.05, (0.5, 0.7), seasonal=Seasonal.HEATING),
        MeterTemplate("WA-UPW", "water", "m3", _R, _D, 30.0, (0.6, 0.8)),
    ),
    pv_share=0.4,
    name_words=("光电", "芯片", "半导体", "光通信", "微电子"),
)

BIOMEDICINE = Archetype(
    "biomedicine",
    "生物医药",
    Profile.SHIFT3,
    intensity=(0.1, 0.3),
    energy_tce=(1_000.0, 15_000.0),
    industries=(
        Industry("2710", "化学药品原料药制造", "原料药", "t", (3_000.0, 6_000.0)),
        Industry("2720", "化学药品制剂制造", "化学药品制剂", "万盒", (8.0, 15.0)),
        Industry("2761", "生物药品制造", "生物药品", "万支", (20.0, 40.0)),
    ),
    meters=(
        _el("EL-01", 0.45, (0.35, 0.45), seasonal=Seasonal.COOLING),
        _el("EL-02", 0.12, (0.35, 0.45), optional=True),
        MeterTemplate("ST-01", "steam", "t", _R, _H, 0.33, (0.15, 0.25), seasonal=Seasonal.HEATING),
        MeterTemplate("NG-01", "natural_gas", "m3", _R, _H, 0.10, (0.1, 0.2), seasonal=Seasonal.HEATING),
        _water(10.0),
    ),
    pv_share=0.3,
    name_words=("生物", "制药", "医药", "药业"),
)

AGRIFOOD = Archetype(
    "agrifood",
    "农产品加工",
    Profile.SHIFT2,
    intensity=(0.2, 0.5),
    energy_tce=(500.0, 8_000.0),
    industries=(
        Industry("1311", "稻谷加工", "大米", "t", (12.0, 20.0), _RICE, ("粮油", "米业", "农业")),
        Industry("1391", "淀粉及淀粉制品制造", "淀粉", "t", (150.0, 250.0), _STARCH, ("淀粉", "食品")),
        Industry("1361", "水产品冷冻加工", "冷冻水产品", "t", (80.0, 140.0), _AQUATIC, ("水产", "食品")),
        Industry("1530", "精制茶加工", "精制茶", "t", (500.0, 900.0), _TEA, ("茶业",)),
        Industry("1331", "食用植物油加工", "食用植物油", "t", (40.0, 70.0), _STARCH, ("粮油", "油脂")),
    ),
    meters=(
        _el("EL-01", 0.45, (0.3, 0.4), seasonal=Seasonal.COOLING),
        MeterTemplate("ST-01", "steam", "t", _R, _H, 0.35, (0.1, 0.2)),
        MeterTemplate("NG-01", "natural_gas", "m3", _R, _H, 0.20, (0.1, 0.2), seasonal=Seasonal.HEATING),
        _water(20.0),
    ),
    pv_share=0.3,
    name_words=("食品", "粮油", "农业", "水产", "茶业"),
)

EQUIPMENT = Archetype(
    "equipment",
    "装备制造",
    Profile.SHIFT1,
    intensity=(0.03, 0.15),  # U: not in DOMAIN.md §6
    energy_tce=(300.0, 5_000.0),
    industries=(
        Industry("3569", "其他电子专用设备制造", "激光加工设备", "台", (300.0, 600.0)),
        Industry("4343", "航空航天器修理", "航空器维修", "架次", (2_000.0, 4_000.0)),
        Industry("3434", "连续搬运设备制造", "物流输送设备", "台", (200.0, 400.0)),
        Industry("3493", "增材制造装备制造", "增材制造设备", "台", (500.0, 900.0)),
        Industry("3321", "切削工具制造", "金刚石工具", "万件", (300.0, 600.0)),
        Industry("3731", "金属船舶制造", "船舶", "万载重吨", (20_000.0, 40_000.0)),
        Industry("3581", "医疗诊断、监护及治疗设备制造", "医疗设备", "台", (50.0, 120.0)),
        Industry("3491", "工业机器人制造", "工业机器人", "台", (150.0, 300.0)),
        Industry("3911", "计算机整机制造", "计算机", "万台", (1_000.0, 2_000.0)),
        Industry("3841", "锂离子电池制造", "锂离子电池", "万只", (200.0, 400.0)),
    ),
    meters=(
        _el("EL-01", 0.72, (0.2, 0.3), seasonal=Seasonal.COOLING),
        _el("EL-02", 0.10, (0.2, 0.3), optional=True),
        MeterTemplate("NG-01", "natural_gas", "m3", _R, _H, 0.14, (0.05, 0.1), seasonal=Seasonal.HEATING),
        MeterTemplate("DSL-01", "diesel", "t", _I, _D, 0.04, (0.1, 0.2)),
        _water(5.0),
    ),
    pv_share=0.4,
    name_words=("智能装备", "机械", "科技", "精密", "重工"),
)

TEXTILE = Archetype(
    "textile",
    "纺织印染",
    Profile.SHIFT3,
    intensity=(0.3, 0.6),  # U: not in DOMAIN.md §6
    energy_tce=(2_000.0, 15_000.0),
    industries=(
        Industry("1713", "棉印染精加工", "印染布", "万米", (400.0, 700.0)),
        Industry("1711", "棉纺纱加工", "棉纱", "t", (300.0, 500.0)),
    ),
    meters=(
        _el("EL-01", 0.28, (0.3, 0.4)),
        _el("EL-02", 0.12, (0.3, 0.4)),
        MeterTemplate("ST-01", "steam", "t", _R, _H, 0.45, (0.1, 0.2)),
        MeterTemplate("NG-01", "natural_gas", "m3", _R, _H, 0.15, (0.1, 0.2), seasonal=Seasonal.HEATING),
        _water(50.0),
    ),
    name_words=("纺织", "印染", "纺纱"),
)

ARCHETYPES: dict[str, Archetype] = {
    a.key: a for a in (STEEL, CEMENT, SEMICONDUCTOR, BIOMEDICINE, AGRIFOOD, EQUIPMENT, TEXTILE)
}


@dataclass(frozen=True, slots=True)
class Area:
    """One of the five areas named in the policy (DOMAIN.md §1), a ``park`` in the registry."""

    code: str
    name_zh: str
    division: str
    """Administrative division code in the enterprises' credit codes (GB/T 2260)."""
    weight: float
    """Share of the city's enterprises."""
    mix: tuple[tuple[str, str, float], ...]
    """(archetype key, industry code, weight) of the area's enterprises."""


AREAS: tuple[Area, ...] = (
    Area(
        "GDKFQ",
        "葛店经开区",
        "420700",
        0.30,
        (
            ("semiconductor", "3976", 3.0),
            ("semiconductor", "3973", 2.0),
            ("semiconductor", "3974", 1.0),
            ("equipment", "3841", 2.0),
            ("equipment", "3569", 2.0),
            ("biomedicine", "2720", 2.0),
            ("biomedicine", "2710", 1.0),
            ("biomedicine", "2761", 1.0),
        ),
    ),
    Area(
        "LKJJQ",
        "临空经济区",
        "420700",
        0.20,
        (
            ("equipment", "4343", 2.0),
            ("biomedicine", "2761", 2.0),
            ("equipment", "3434", 2.0),
            ("equipment", "3493", 1.0),
            ("semiconductor", "3973", 1.0),
            ("semiconductor", "3832", 2.0),
            ("equipment", "3321", 1.0),
        ),
    ),
    Area(
        "ECQ",
        "鄂城区",
        "420704",
        0.25,
        (
            ("steel", "3120", 0.6),
            ("equipment", "3491", 2.0),
            ("cement", "3011", 1.0),
            ("cement", "3041", 0.6),
            ("agrifood", "1311", 2.0),
            ("agrifood", "1391", 1.0),
            ("agrifood", "1331", 1.0),
        ),
    ),
    Area(
        "HRQ",
        "华容区",
        "420703",
        0.15,
        (
            ("equipment", "3911", 2.0),
            ("equipment", "3731", 1.5),
            ("cement", "3011", 0.6),
            ("textile", "1713", 1.5),
            ("textile", "1711", 1.0),
        ),
    ),
    Area(
        "LZHQ",
        "梁子湖区",
        "420702",
        0.10,
        (
            ("equipment", "3581", 2.5),
            ("equipment", "3491", 1.0),
            ("agrifood", "1361", 2.0),
            ("agrifood", "1530", 1.0),
        ),
    ),
)

ANCHORS: tuple[tuple[str, str, str], ...] = (
    ("ECQ", "steel", "3120"),
    ("ECQ", "cement", "3011"),
    ("GDKFQ", "semiconductor", "3976"),
    ("GDKFQ", "biomedicine", "2720"),
    ("ECQ", "agrifood", "1311"),
)
"""The first enterprises of every park of five or more: one of each DOMAIN.md §6 sector,
beginning with the steel works that dominates the city's energy (鄂钢-like)."""


def industry(archetype: Archetype, code: str) -> Industry:
    for item in archetype.industries:
        if item.code == code:
            return item
    raise KeyError(f"{archetype.key} has no industry {code}")


PV_YIELD_KWH_PER_KWP = 1_100.0
"""Annual yield of rooftop PV in Hubei [kWh/kWp] (U: 1000-1200 full-load hours)."""
