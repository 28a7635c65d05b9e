"""Prices of hardware, for the leaderboard's cost per million samples and `bench plan`'s costs: YAML
files (``conf/hardware/*.yaml`` by default), each naming ``hardware`` (the label exactly as in the
records), ``currency``, and either ``price_per_hour`` (a cloud instance) or ``purchase_price`` with
``lifetime_months`` (a device bought). Optional: ``power_price_per_kwh``, ``idle_power_w`` (what one
unit draws with nothing to do), ``tdp_w`` (an estimate of its power at load, for a plan where no sensor
measured it; always labelled as an estimate), ``rack_units`` (the space one unit takes in a
rack, for a plan's max_rack_units), ``example: true`` (a file that matches no real machine).

The leaderboard's hourly price of a purchased device is its purchase price spread over its lifetime
(730 hours a month), energy not included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bench.config.schema import CONF_DIR
from bench.errors import ConfigError

__all__ = ["PRICES_DIR", "HOURS_PER_MONTH", "Price", "load_prices"]

PRICES_DIR = CONF_DIR / "hardware"


HOURS_PER_MONTH = 730.0  # 8760 h / 12


@dataclass(frozen=True)
class Price:
    hardware: str
    price_per_hour: float  # given, or for a purchase the purchase price over its lifetime's hours
    currency: str
    source: str
    purchase_price: Optional[float] = None
    lifetime_months: Optional[float] = None
    power_price_per_kwh: Optional[float] = None
    idle_power_w: Optional[float] = None
    tdp_w: Optional[float] = None
    example: bool = False
    rack_units: Optional[float] = None  # the rack space one unit takes (1U, 2U), for max_rack_units

    @property
    def purchased(self) -> bool:
        return self.purchase_price is not None


def _positive(data: dict, key: str, path: Path, fix: str, zero_ok: bool = False) -> Optional[float]:
    value = data.get(key)
    if value is None:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or not (value >= 0 if zero_ok else value > 0):
        what = "a number >= 0" if zero_ok else "a positive number"
        raise ConfigError("prices", str(path), fix, f"has {key}={value!r}, not {what}")
    return float(value)


def load_prices(where: Optional[Path] = None) -> dict[str, Price]:
    """Hourly prices by hardware label from a folder of YAML files (or one file)."""
    import yaml

    where = PRICES_DIR if where is None else Path(where)
    fix = ("write hardware: \"<label as in the records>\", price_per_hour: 1.23 (or purchase_price: 900 and "
           "lifetime_months: 36), currency: USD")
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
        price = _positive(data, "price_per_hour", path, fix)
        purchase = _positive(data, "purchase_price", path, fix)
        lifetime = _positive(data, "lifetime_months", path, fix)
        if price is not None and purchase is not None:
            raise ConfigError("prices", str(path), "give price_per_hour (cloud) or purchase_price (bought), not both",
                              "has both price_per_hour and purchase_price")
        if purchase is not None and lifetime is None:
            raise ConfigError("prices", str(path), "add lifetime_months: 36 (the months the purchase is spread over)",
                              "has purchase_price without lifetime_months")
        if price is None and purchase is None:
            raise ConfigError("prices", str(path), fix, f"has price_per_hour={data.get('price_per_hour')!r}, "
                              "not a positive number")
        if price is None:
            price = purchase / (lifetime * HOURS_PER_MONTH)  # type: ignore[operator]
        currency = data.get("currency")
        if not isinstance(currency, str) or not currency.strip():
            raise ConfigError("prices", str(path), fix, "names no currency")
        label = data["hardware"]
        if label in prices:
            raise ConfigError("prices", str(path), "keep one price per hardware label",
                              f"prices {label!r} again (first in {prices[label].source})")
        prices[label] = Price(label, float(price), currency.strip(), str(path), purchase, lifetime,
                              _positive(data, "power_price_per_kwh", path, fix, zero_ok=True),
                              _positive(data, "idle_power_w", path, fix, zero_ok=True),
                              _positive(data, "tdp_w", path, fix), bool(data.get("example", False)),
                              _positive(data, "rack_units", path, fix))
    return prices
