//! Reading commands from JSON as the contract says: a struct only from a JSON object.
//!
//! serde's derived structs also take an array of their fields in order (`["acme","support"]`),
//! and an internally tagged enum an array whose first element is its tag. The HTTP API and the
//! scenario files document objects, so a field holding a struct reads it through `object` or
//! `objects`, which refuse anything but an object before the struct sees it.

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON object, and nothing else.
pub struct Object(pub Map<String, Value>);

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut out = Map::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if out.insert(k.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("duplicate field `{k}`")));
                    }
                }
                Ok(Object(out))
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

impl Object {
    /// The struct this object holds.
    pub fn into<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        T::deserialize(Value::Object(self.0))
    }
}

/// `#[serde(deserialize_with = "json::object")]`: a struct or tagged enum, from an object only.
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let o: Object = serde::Deserialize::deserialize(d)?;
    o.into().map_err(de::Error::custom)
}

/// `#[serde(deserialize_with = "json::objects")]`: a list of structs, each from an object only.
pub fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    struct ListVisitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: DeserializeOwned> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of JSON objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(o) = seq.next_element::<Object>()? {
                let n = out.len();
                out.push(
                    o.into()
                        .map_err(|e| de::Error::custom(format!("item {n}: {e}")))?,
                );
            }
            Ok(out)
        }
    }
    d.deserialize_seq(ListVisitor(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::Command;

    #[test]
    fn a_command_and_the_structs_in_it_come_from_objects_only() {
        let ok = r#"{"type":"invite","org":"acme","invite":"i1","email":"a@b.c",
            "assignments":[{"scope":"team:support","role":"team_admin"}]}"#;
        assert!(serde_json::from_str::<Command>(ok).is_ok());
        let inner_array = r#"{"type":"invite","org":"acme","invite":"i1","email":"a@b.c",
            "assignments":[["team:support","team_admin",null]]}"#;
        let e = serde_json::from_str::<Command>(inner_array)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
    }
}
