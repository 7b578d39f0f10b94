"""Names of the industrial divisions of GB/T 4754-2017 (国民经济行业分类), for the report's tables.

Industrial enterprises above designated size (规模以上工业) are those of sections B
(采矿业, divisions 06-12), C (制造业, 13-43) and D (电力、热力、燃气及水生产和供应业,
44-46). The Chinese names are those of GB/T 4754-2017 (with amendment No. 1, 2019,
which did not change the division names); the English names are this project's
translation. An industry code is shown with the name of its division (its first two
digits); a code outside these divisions is shown alone.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DIVISIONS", "division_name"]

# GB/T 4754-2017, sections B, C and D: division code -> (Chinese name, English name).
DIVISIONS: Final[dict[str, tuple[str, str]]] = {
    "06": ("煤炭开采和洗选业", "Coal mining and washing"),
    "07": ("石油和天然气开采业", "Extraction of petroleum and natural gas"),
    "08": ("黑色金属矿采选业", "Mining of ferrous metal ores"),
    "09": ("有色金属矿采选业", "Mining of non-ferrous metal ores"),
    "10": ("非金属矿采选业", "Mining of non-metallic minerals"),
    "11": ("开采专业及辅助性活动", "Mining support activities"),
    "12": ("其他采矿业", "Other mining"),
    "13": ("农副食品加工业", "Processing of agricultural and sideline food products"),
    "14": ("食品制造业", "Food manufacturing"),
    "15": ("酒、饮料和精制茶制造业", "Liquor, beverages and refined tea"),
    "16": ("烟草制品业", "Tobacco products"),
    "17": ("纺织业", "Textiles"),
    "18": ("纺织服装、服饰业", "Textile garments and apparel"),
    "19": ("皮革、毛皮、羽毛及其制品和制鞋业", "Leather, fur, feathers and footwear"),
    "20": ("木材加工和木、竹、藤、棕、草制品业", "Wood, bamboo, rattan, palm and straw products"),
    "21": ("家具制造业", "Furniture"),
    "22": ("造纸和纸制品业", "Paper and paper products"),
    "23": ("印刷和记录媒介复制业", "Printing and reproduction of recorded media"),
    "24": ("文教、工美、体育和娱乐用品制造业", "Articles for culture, education, arts, sport and leisure"),
    "25": ("石油、煤炭及其他燃料加工业", "Petroleum, coal and other fuel processing"),
    "26": ("化学原料和化学制品制造业", "Chemical raw materials and chemical products"),
    "27": ("医药制造业", "Pharmaceuticals"),
    "28": ("化学纤维制造业", "Chemical fibres"),
    "29": ("橡胶和塑料制品业", "Rubber and plastic products"),
    "30": ("非金属矿物制品业", "Non-metallic mineral products"),
    "31": ("黑色金属冶炼和压延加工业", "Smelting and pressing of ferrous metals"),
    "32": ("有色金属冶炼和压延加工业", "Smelting and pressing of non-ferrous metals"),
    "33": ("金属制品业", "Metal products"),
    "34": ("通用设备制造业", "General-purpose machinery"),
    "35": ("专用设备制造业", "Special-purpose machinery"),
    "36": ("汽车制造业", "Automobiles"),
    "37": (
        "铁路、船舶、航空航天和其他运输设备制造业",
        "Railway, ship, aerospace and other transport equipment",
    ),
    "38": ("电气机械和器材制造业", "Electrical machinery and equipment"),
    "39": ("计算机、通信和其他电子设备制造业", "Computers, communication and other electronic equipment"),
    "40": ("仪器仪表制造业", "Instruments and meters"),
    "41": ("其他制造业", "Other manufacturing"),
    "42": ("废弃资源综合利用业", "Utilisation of waste resources"),
    "43": ("金属制品、机械和设备修理业", "Repair of metal products, machinery and equipment"),
    "44": ("电力、热力生产和供应业", "Production and supply of electricity and heat"),
    "45": ("燃气生产和供应业", "Production and supply of gas"),
    "46": ("水的生产和供应业", "Production and supply of water"),
}


def division_name(industry_code: str | None, lang: str) -> str | None:
    """The name of the division of ``industry_code`` in ``lang`` (``zh`` or ``en``), None if unknown."""
    if not industry_code or len(industry_code) < 2:
        return None
    names = DIVISIONS.get(industry_code[:2])
    if names is None:
        return None
    return names[0] if lang == "zh" else names[1]
