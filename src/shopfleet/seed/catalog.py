"""Deterministic demo rows: a category tree, products with realistic names, customers."""

from __future__ import annotations

import itertools
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfleet.categories.schemas import slugify

# Fixed, so the same seed gives the same rows, timestamps included.
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
CUSTOMER_DOMAIN = "shop.example.com"

# Department -> (price range in whole currency units, {subcategory: product nouns}).
DEPARTMENTS: dict[str, tuple[tuple[int, int], dict[str, list[str]]]] = {
    "Electronics": ((15, 900), {
        "Headphones": ["Headphones", "Earbuds", "Headset"],
        "Speakers": ["Bluetooth Speaker", "Soundbar", "Bookshelf Speakers"],
        "Cameras": ["Action Camera", "Mirrorless Camera", "Webcam"],
        "Chargers": ["USB-C Charger", "Power Bank", "Wireless Charger"],
        "Keyboards": ["Mechanical Keyboard", "Wireless Keyboard", "Keypad"],
        "Monitors": ["Monitor", "Portable Display", "Monitor Arm"],
    }),
    "Home & Kitchen": ((8, 400), {
        "Cookware": ["Frying Pan", "Dutch Oven", "Saucepan", "Wok"],
        "Lighting": ["Desk Lamp", "Floor Lamp", "Pendant Light", "String Lights"],
        "Bedding": ["Duvet Cover", "Pillow", "Throw Blanket", "Sheet Set"],
        "Storage": ["Storage Basket", "Pantry Jar", "Shoe Rack"],
        "Small Appliances": ["Kettle", "Toaster", "Blender", "Coffee Grinder"],
    }),
    "Furniture": ((40, 1500), {
        "Chairs": ["Armchair", "Office Chair", "Dining Chair", "Stool"],
        "Desks": ["Standing Desk", "Writing Desk", "Corner Desk"],
        "Sofas": ["Sofa", "Loveseat", "Sofa Bed"],
        "Shelving": ["Bookcase", "Wall Shelf", "Ladder Shelf"],
        "Tables": ["Coffee Table", "Side Table", "Dining Table"],
    }),
    "Sports & Outdoors": ((10, 1200), {
        "Tents": ["Tent", "Tarp", "Hammock"],
        "Backpacks": ["Backpack", "Daypack", "Hydration Pack"],
        "Bicycles": ["Road Bike", "Bike Helmet", "Bike Light"],
        "Yoga": ["Yoga Mat", "Yoga Block", "Resistance Band"],
        "Fishing": ["Fishing Rod", "Tackle Box", "Reel"],
    }),
    "Clothing": ((9, 350), {
        "Jackets": ["Rain Jacket", "Down Jacket", "Fleece"],
        "Shirts": ["Oxford Shirt", "T-Shirt", "Flannel Shirt"],
        "Sneakers": ["Running Shoes", "Sneakers", "Trail Shoes"],
        "Hats": ["Beanie", "Baseball Cap", "Sun Hat"],
        "Socks": ["Hiking Socks", "Crew Socks", "Wool Socks"],
    }),
    "Books": ((5, 60), {
        "Fiction": ["Novel", "Short Story Collection", "Mystery"],
        "Cookbooks": ["Cookbook", "Baking Book"],
        "Travel Guides": ["Travel Guide", "Road Atlas", "Phrasebook"],
        "Comics": ["Graphic Novel", "Comic Anthology"],
    }),
    "Toys & Games": ((6, 250), {
        "Board Games": ["Board Game", "Card Game", "Strategy Game"],
        "Puzzles": ["Jigsaw Puzzle", "Puzzle Cube", "Brain Teaser"],
        "Building Sets": ["Building Set", "Marble Run", "Construction Kit"],
        "Plush Toys": ["Teddy Bear", "Plush Fox", "Plush Whale"],
    }),
    "Beauty": ((4, 180), {
        "Skincare": ["Face Cream", "Serum", "Cleanser"],
        "Fragrances": ["Eau de Parfum", "Body Mist", "Scented Candle"],
        "Hair Care": ["Shampoo", "Hair Dryer", "Hair Brush"],
    }),
    "Garden": ((5, 600), {
        "Planters": ["Planter", "Raised Bed", "Hanging Basket"],
        "Garden Tools": ["Pruning Shears", "Garden Hose", "Trowel"],
        "Outdoor Lighting": ["Solar Lantern", "Path Light", "Flood Light"],
    }),
    "Office": ((2, 300), {
        "Notebooks": ["Notebook", "Planner", "Sketchbook"],
        "Pens": ["Fountain Pen", "Gel Pen Set", "Marker Set"],
        "Desk Organizers": ["Desk Organizer", "Monitor Stand", "Cable Tray"],
    }),
}  # fmt: skip
ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Ergonomic", "Essential", "Foldable", "Heritage",
    "Lightweight", "Modern", "Nordic", "Premium", "Pro", "Retro", "Rugged", "Sleek", "Smart",
    "Soft", "Sturdy", "Ultra", "Urban", "Vintage", "Wireless", "Everyday", "Travel",
)  # fmt: skip
MATERIALS = (
    "Oak", "Walnut", "Bamboo", "Steel", "Copper", "Brass", "Linen", "Cotton", "Wool", "Leather",
    "Ceramic", "Glass", "Carbon", "Granite", "Slate", "Cedar", "Midnight", "Arctic", "Sage",
    "Terracotta", "Indigo", "Graphite", "Ivory", "Amber", "Coral",
)  # fmt: skip
FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Diego", "Emma", "Farah", "Gustav", "Hana", "Ivan", "Julia", "Kenji",
    "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
)  # fmt: skip
LAST_NAMES = (
    "Andersen", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Silva",
)  # fmt: skip
DESCRIPTIONS = (
    "Built to last and easy to care for.",
    "A customer favourite, now in new colours.",
    "Designed in-house and tested for everyday use.",
    "Thoughtful details at a fair price.",
    "Ships in recyclable packaging.",
)


@dataclass(frozen=True)
class SeedCategory:
    id: uuid.UUID
    name: str
    nouns: tuple[str, ...]
    price_range: tuple[int, int]


def new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _timestamp(rng: random.Random) -> datetime:
    return ANCHOR - timedelta(seconds=rng.randrange(365 * 86400), microseconds=rng.randrange(10**6))


def category_rows(
    rng: random.Random, count: int
) -> tuple[list[dict[str, Any]], list[SeedCategory]]:
    """Return `count` category rows (departments first) and the leaves products go in."""
    departments = list(DEPARTMENTS)[: max(1, min(len(DEPARTMENTS), math.ceil(count / 5)))]
    rows: list[dict[str, Any]] = []
    leaves: list[SeedCategory] = []
    ids: dict[str, uuid.UUID] = {}
    for name in departments[:count]:
        ids[name] = new_uuid(rng)
        rows.append(_category(rng, ids[name], name, None))
    # Subcategories round-robin over the departments; past the word list they get numbers.
    pending = count - len(rows)
    subs = {d: itertools.cycle(DEPARTMENTS[d][1].items()) for d in departments}
    seen: dict[str, int] = {}
    for department in itertools.islice(itertools.cycle(departments), pending):
        base, nouns = next(subs[department])
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base} {seen[base]}"
        category_id = new_uuid(rng)
        rows.append(_category(rng, category_id, name, ids[department]))
        leaves.append(SeedCategory(category_id, name, tuple(nouns), DEPARTMENTS[department][0]))
    if not leaves:
        for name in departments[:count]:
            all_nouns = tuple(n for sub in DEPARTMENTS[name][1].values() for n in sub)
            leaves.append(SeedCategory(ids[name], name, all_nouns, DEPARTMENTS[name][0]))
    return rows, leaves


def _category(
    rng: random.Random, category_id: uuid.UUID, name: str, parent_id: uuid.UUID | None
) -> dict[str, Any]:
    created = _timestamp(rng) - timedelta(days=365)
    return {
        "id": category_id,
        "name": name,
        "slug": slugify(name),
        "description": f"Everything in {name}.",
        "parent_id": parent_id,
        "created_at": created,
        "updated_at": created,
    }


def product_rows(
    rng: random.Random, count: int, categories: list[SeedCategory], *, start: int = 0
) -> list[dict[str, Any]]:
    """Return `count` products spread unevenly over `categories`, as real catalogs are."""
    weights = [1 / (rank + 1) ** 0.7 for rank in range(len(categories))]
    chosen = rng.choices(categories, weights=weights, k=count)
    rows = []
    for number, category in enumerate(chosen, start=start + 1):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(category.nouns)}"
        low, high = category.price_range
        whole = int(math.exp(rng.uniform(math.log(low), math.log(high))))
        sku = f"SF-{number:07d}"
        created = _timestamp(rng)
        rows.append(
            {
                "id": new_uuid(rng),
                "sku": sku,
                "name": name,
                "description": f"{name}. {rng.choice(DESCRIPTIONS)}",
                "price_cents": whole * 100 + rng.choice((99, 99, 95, 49, 0)),
                "category_id": category.id,
                "stock": 0 if rng.random() < 0.08 else min(999, int(rng.expovariate(1 / 60)) + 1),
                "image": f"https://images.shopfleet.example/products/{sku.lower()}.jpg",
                "created_at": created,
                "updated_at": created + timedelta(hours=rng.randrange(48)),
            }
        )
    return rows


def customer_rows(rng: random.Random, count: int, password_hash: str) -> list[dict[str, Any]]:
    rows = []
    for number in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = _timestamp(rng)
        rows.append(
            {
                "id": new_uuid(rng),
                "email": f"{first}.{last}.{number}@{CUSTOMER_DOMAIN}".lower(),
                "name": f"{first} {last}",
                "password_hash": password_hash,
                "role": "customer",
                "active": True,
                "created_at": created,
                "updated_at": created,
            }
        )
    return rows
