"""The demo shop under /demo/: products, cart, checkout and order confirmation, tagged for Cohortly.

The pages send the Segment Ecommerce events the way the README tells real shops to: `Product Viewed` from the
product page's script, `Product Added` by declarative tagging on the button, `Checkout Started` and
`Order Completed` from the checkout's script, and `identify` with the buyer's email.
"""

from flask import Blueprint, abort, current_app, render_template

from demo.catalog import BY_ID, PRODUCTS

bp = Blueprint("shop", __name__, url_prefix="/demo", template_folder="templates")


@bp.context_processor
def snippet_settings():
    return {"write_key": current_app.config["DEMO_WRITE_KEY"], "products": PRODUCTS}


@bp.get("/")
def index():
    return render_template("shop/index.html")


@bp.get("/products/<product_id>")
def product(product_id):
    item = BY_ID.get(product_id) or abort(404)
    return render_template("shop/product.html", product=item)


@bp.get("/cart")
def cart():
    return render_template("shop/cart.html")


@bp.get("/checkout")
def checkout():
    return render_template("shop/checkout.html")


@bp.get("/order")
def order():
    return render_template("shop/order.html")
