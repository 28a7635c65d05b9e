"""Hourly prices of hardware, for the leaderboard's cost per million samples: YAML files
(``conf/hardware/*.yaml`` by default), each naming ``hardware`` (the label exactly as in the records),
``price_per_hour`` and ``currency``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bench.config.schema import CONF_DIR
from bench.errors import ConfigError

__all__ = ["PRICES_DIR", "Price", "load_prices"]

PRICES_DIR = CONF_DIR / "hardware"


@dataclass(frozen=True)
class Price:
    hardware: str
    price_per_hour: float
    currency: str
    source: str


def load_prices(where: Optional[Path] = None) -> dict[str, Price]:
    """Hourly prices by hardware label from a folder of YAML files (or one file)."""
    import yaml

    where = PRICES_DIR if where is None else Path(where)
    fix = "write hardware: \"<label as in the records>\", price_per_hour: 1.23, currency: USD"
    if where.is_file():
        files = [where]
    elif where.is_dir():
        files = sorted(where.glob("*.yaml")) + sorted(where.glob("*.yml"))
        if not files and where != PRICES_DIR:
            # prices=FOLDER asks for prices: a folder without any would silently drop the cost column.
            raise ConfigError("prices", str(where), f"put one .yaml file per hardware label in it ({fix})",
                              "holds no price files (*.yaml, *.yml)")
    elif where == PRICES_DIR:
        return {}
    else:
        raise ConfigError("prices", str(where), "give a folder of price files or one YAML file", "does not exist")
    prices: dict[str, Price] = {}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
            raise ConfigError("prices", str(path), fix, f"is not readable YAML ({reason})") from None
        if not isinstance(data, dict) or not isinstance(data.get("hardware"), str) or not data["hardware"]:
            raise ConfigError("prices", str(path), fix, "names no hardware label")
        price = data.get("price_per_hour")
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not price > 0 or math.isinf(price):
            raise ConfigError("prices", str(path), fix, f"has price_per_hour={price!r}, not a positive number")
        currency = data.get("currency")
        if not isinstance(currency, str) or not currency.strip():
            raise ConfigError("prices", str(path), fix, "names no currency")
        label = data["hardware"]
        if label in prices:
            raise ConfigError("prices", str(path), "keep one price per hardware label",
                              f"prices {label!r} again (first in {prices[label].source})")
        prices[label] = Price(label, float(price), currency.strip(), str(path))
    return prices
