// Declarative tagging: the properties of a track call from an element's data-cohortly-prop-* attributes.
const ATTRIBUTE_PREFIX = "data-cohortly-prop-";

export const tagProperties = (element) => {
  const properties = {};
  for (const { name, value } of element.attributes) {
    if (name.startsWith(ATTRIBUTE_PREFIX)) {
      // The property's name is the rest of the attribute's name. A plain decimal value ("12", "-3.5", "0.99"; not
      // "007", "1e3" or "12.") becomes a number, unless the name ends in "id" or "sku": identifiers stay strings.
      const property = name.slice(ATTRIBUTE_PREFIX.length);
      const isNumber = /^-?(0|[1-9]\d*)(\.\d+)?$/.test(value) && !/(id|sku)$/.test(name);
      properties[property] = isNumber ? Number(value) : value;
    }
  }
  return properties;
};
