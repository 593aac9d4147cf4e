"""The demo shop's products."""

PRODUCTS = [
    {"product_id": "trail-shoe", "name": "Trail Running Shoe", "category": "Shoes", "price": 89.0, "color": "#c05621"},
    {"product_id": "city-sneaker", "name": "City Sneaker", "category": "Shoes", "price": 65.0, "color": "#2b6cb0"},
    {"product_id": "rain-jacket", "name": "Rain Jacket", "category": "Jackets", "price": 120.0, "color": "#2f855a"},
    {"product_id": "down-vest", "name": "Down Vest", "category": "Jackets", "price": 95.0, "color": "#6b46c1"},
    {
        "product_id": "wool-socks",
        "name": "Merino Wool Socks",
        "category": "Accessories",
        "price": 14.5,
        "color": "#b7791f",
    },
    {"product_id": "sun-cap", "name": "Sun Cap", "category": "Accessories", "price": 22.0, "color": "#d69e2e"},
    {"product_id": "day-pack", "name": "Day Pack 20L", "category": "Bags", "price": 75.0, "color": "#2c7a7b"},
    {
        "product_id": "water-bottle",
        "name": "Steel Water Bottle",
        "category": "Accessories",
        "price": 18.0,
        "color": "#4a5568",
    },
]

BY_ID = {product["product_id"]: product for product in PRODUCTS}
