"""Static knowledge the simulator draws from: merchant categories, daily rhythms, names and brands.

Numbers are rough but plausible (median ticket per category, when people shop), because dashboards,
the fraud model and the RAG index are all judged on data that should look like the real thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mdslab.workloads.contracts import MerchantCategory as Cat

# Relative activity per local hour 0..23 for a few daily rhythms.
HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    "shopping": (
        0.2, 0.1, 0.05, 0.05, 0.05, 0.2, 0.6, 1.2, 2.0, 3.0, 4.0, 4.8,
        5.5, 5.0, 4.5, 4.5, 5.0, 6.0, 6.0, 5.0, 3.5, 2.2, 1.2, 0.5,
    ),
    "dining": (
        0.4, 0.2, 0.1, 0.05, 0.05, 0.1, 0.5, 1.5, 2.0, 1.5, 1.5, 4.0,
        7.5, 6.5, 2.5, 1.5, 1.5, 3.0, 6.0, 7.5, 6.0, 3.5, 1.8, 0.9,
    ),
    "commute": (
        0.3, 0.15, 0.1, 0.1, 0.3, 1.0, 3.5, 6.0, 5.5, 3.5, 3.0, 3.0,
        3.5, 3.0, 3.0, 3.5, 5.0, 6.5, 6.0, 4.0, 2.5, 1.5, 1.0, 0.6,
    ),
    "evening": (
        1.0, 0.6, 0.3, 0.1, 0.05, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5,
        2.0, 2.0, 2.0, 2.2, 2.6, 3.5, 5.0, 6.5, 7.0, 6.0, 4.0, 2.2,
    ),
    "online": (
        1.2, 0.7, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.2, 2.8, 3.2, 3.4,
        3.6, 3.5, 3.3, 3.3, 3.5, 3.8, 4.2, 4.8, 5.2, 5.0, 3.8, 2.3,
    ),
    "late": (
        3.0, 2.2, 1.4, 0.8, 0.4, 0.2, 0.2, 0.3, 0.5, 0.8, 1.0, 1.2,
        1.4, 1.5, 1.5, 1.6, 1.8, 2.2, 2.8, 3.5, 4.2, 4.8, 4.8, 4.0,
    ),
    "office": (
        0.05, 0.02, 0.02, 0.02, 0.02, 0.05, 0.3, 1.5, 4.5, 6.0, 6.5, 6.0,
        4.5, 5.0, 5.5, 5.0, 4.0, 2.5, 1.2, 0.8, 0.6, 0.4, 0.2, 0.1,
    ),
}  # fmt: skip
PROFILE_NAMES: tuple[str, ...] = tuple(HOUR_PROFILES)


@dataclass(frozen=True)
class CategoryProfile:
    mcc: str
    median_amount: float
    sigma: float  # of log(amount)
    hours: str  # key of HOUR_PROFILES
    weekend_boost: float  # extra weight on Saturday and Sunday (0 = none, negative = fewer)
    store_share: float  # share of physical merchants in this category
    online_share: float  # share of online merchants in this category
    visit_rate: float  # how often a single merchant of this category is used, relative
    brands: tuple[str, ...]


CATEGORIES: dict[Cat, CategoryProfile] = {
    Cat.GROCERY: CategoryProfile(
        "5411", 32.0, 0.7, "shopping", 0.35, 0.18, 0.04, 3.0,
        ("FreshWay", "GreenBasket", "DailyMart", "Harvest Market", "Corner Grocer", "ValueFoods"),
    ),
    Cat.RESTAURANTS: CategoryProfile(
        "5812", 38.0, 0.6, "dining", 0.5, 0.14, 0.0, 1.6,
        ("Olive & Thyme", "The Copper Pot", "Bella Napoli", "Golden Dragon", "Bistro Verde", "Smoke House"),
    ),
    Cat.FAST_FOOD: CategoryProfile(
        "5814", 12.0, 0.5, "dining", 0.2, 0.12, 0.05, 2.0,
        ("QuickBite", "Burger Barn", "Taco Loco", "WrapStar", "Noodle Box", "Crispy Corner"),
    ),
    Cat.FUEL: CategoryProfile(
        "5541", 52.0, 0.4, "commute", 0.0, 0.08, 0.0, 1.8,
        ("PetroLine", "FuelStop", "Roadstar Energy", "QuickFill", "Northgate Fuel"),
    ),
    Cat.PHARMACY: CategoryProfile(
        "5912", 24.0, 0.8, "shopping", 0.0, 0.06, 0.04, 1.2,
        ("WellCare Pharmacy", "CityChemist", "HealthPoint", "Apotheca"),
    ),
    Cat.CLOTHING: CategoryProfile(
        "5651", 75.0, 0.8, "shopping", 0.7, 0.09, 0.14, 0.7,
        ("Urban Thread", "Northwind Outfitters", "Linen & Co", "StyleYard", "Denim District"),
    ),
    Cat.ELECTRONICS: CategoryProfile(
        "5732", 280.0, 1.0, "shopping", 0.35, 0.04, 0.12, 0.35,
        ("VoltMart", "GadgetHub", "PixelPoint", "CircuitCity Plus", "TechNest"),
    ),
    Cat.JEWELRY: CategoryProfile(
        "5944", 600.0, 0.9, "shopping", 0.45, 0.02, 0.03, 0.15,
        ("Aurum & Co", "Silverline Jewellers", "Gemstone Gallery", "Crown Jewels"),
    ),
    Cat.TRAVEL: CategoryProfile(
        "4722", 420.0, 0.9, "online", 0.0, 0.02, 0.12, 0.25,
        ("SkyWays", "Wanderlust Travel", "JetSet Bookings", "Harbor Hotels", "RailEurope Direct"),
    ),
    Cat.ENTERTAINMENT: CategoryProfile(
        "7832", 28.0, 0.7, "evening", 0.7, 0.06, 0.12, 0.8,
        ("Starlight Cinemas", "StreamBox", "Arena Tickets", "PlayZone", "Bowl-o-Rama"),
    ),
    Cat.ONLINE_RETAIL: CategoryProfile(
        "5964", 45.0, 1.0, "online", 0.1, 0.0, 0.3, 1.4,
        ("ShopNest", "CartWheel", "MegaMarket Online", "ParcelPal", "BuyBright"),
    ),
    Cat.GAMBLING: CategoryProfile(
        "7995", 60.0, 1.1, "late", 0.3, 0.01, 0.05, 0.5,
        ("LuckyStar Casino", "BetRiver", "Royal Flush Online", "Jackpot Junction"),
    ),
    Cat.UTILITIES: CategoryProfile(
        "4900", 95.0, 0.5, "office", -0.6, 0.0, 0.04, 0.6,
        ("CityPower", "ClearWater Utilities", "BrightGas", "FiberNet Broadband"),
    ),
    Cat.TRANSPORT: CategoryProfile(
        "4121", 18.0, 0.6, "commute", 0.1, 0.06, 0.05, 1.5,
        ("MetroCab", "RideShare Go", "CityTransit", "ParkSmart"),
    ),
    Cat.CASH_WITHDRAWAL: CategoryProfile(
        "6011", 100.0, 0.7, "shopping", 0.2, 0.08, 0.0, 1.4,
        ("First Federal ATM", "Union Bank ATM", "Sparkasse Geldautomat", "Crédit Mutuel DAB"),
    ),
}  # fmt: skip
CATEGORY_CODES: tuple[Cat, ...] = tuple(CATEGORIES)

# Given names and family names by country; emails use an ASCII transliteration.
FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Emma",
           "Oliver", "Sophie", "Daniel", "Grace", "Ethan", "Chloe", "Noah", "Olivia", "Liam", "Ava"),
    "de": ("Lukas", "Anna", "Jonas", "Lea", "Felix", "Lena", "Maximilian", "Hannah", "Paul", "Marie",
           "Leon", "Sophia", "Jürgen", "Sabine", "Stefan", "Katrin"),
    "fr": ("Louis", "Camille", "Gabriel", "Léa", "Jules", "Chloé", "Hugo", "Manon", "Arthur", "Inès",
           "Théo", "Juliette", "Nicolas", "Céline"),
    "es": ("Hugo", "Lucía", "Martín", "Sofía", "Pablo", "María", "Alejandro", "Paula", "Daniel", "Carmen",
           "Javier", "Elena"),
    "it": ("Leonardo", "Giulia", "Francesco", "Sofia", "Alessandro", "Aurora", "Lorenzo", "Chiara",
           "Matteo", "Francesca", "Marco", "Elena"),
    "nl": ("Daan", "Emma", "Sem", "Julia", "Lucas", "Mila", "Finn", "Tess", "Bram", "Sanne", "Jeroen",
           "Anouk"),
}  # fmt: skip
LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
           "Taylor", "Clarke", "Walker", "Wright", "Thompson", "O'Brien", "Murphy", "Patel", "Nguyen",
           "Kim", "Robinson"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Hoffmann", "Koch", "Richter"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
           "Moreau", "Lefèvre", "Girard"),
    "es": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
           "Gómez", "Ruiz"),
    "it": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino",
           "Greco"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit",
           "Meijer", "de Boer"),
}  # fmt: skip
LANGUAGE_BY_COUNTRY: dict[str, str] = {
    "US": "en", "GB": "en", "IE": "en", "DE": "de", "FR": "fr", "ES": "es", "IT": "it", "NL": "nl",
}  # fmt: skip
EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "gmx.net", "hotmail.com",
)  # fmt: skip


def hour_cdfs() -> npt.NDArray[np.float64]:
    """Cumulative hour distributions, one row per profile in PROFILE_NAMES order, shape (profiles, 24)."""
    weights = np.array([HOUR_PROFILES[name] for name in PROFILE_NAMES], dtype=np.float64)
    cdf = np.cumsum(weights, axis=1)
    return cdf / cdf[:, -1:]
