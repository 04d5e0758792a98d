// SPDX-License-Identifier: GPL-2.0

use kvm_tdp_fd_logic::registry::{Registry, RegistryError, MAX_IMPORTERS};
use proptest::prelude::*;

#[test]
fn register_twice_is_busy() {
    let mut r = Registry::new();
    assert_eq!(r.register(1u32, "a"), Ok(()));
    assert_eq!(r.register(1, "b"), Err(RegistryError::Busy));
    assert_eq!(r.len(), 1);
    assert_eq!(r.unregister(1), Ok("a"));
    assert!(r.is_empty());
}

#[test]
fn unknown_unregister_is_not_found() {
    let mut r: Registry<u32, ()> = Registry::new();
    assert_eq!(r.unregister(7), Err(RegistryError::NotFound));
    r.register(7, ()).unwrap();
    r.unregister(7).unwrap();
    assert_eq!(r.unregister(7), Err(RegistryError::NotFound));
}

#[test]
fn capacity_is_bounded() {
    let mut r = Registry::new();
    for k in 0..MAX_IMPORTERS as u32 {
        r.register(k, k).unwrap();
    }
    assert_eq!(r.register(1000, 0), Err(RegistryError::Full));
    // A repeat is still reported as such when full.
    assert_eq!(r.register(0, 0), Err(RegistryError::Busy));
    r.unregister(3).unwrap();
    assert_eq!(r.register(1000, 0), Ok(()));
}

#[derive(Clone, Debug)]
enum Op {
    Register(u8),
    Unregister(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..24).prop_map(Op::Register),
        (0u8..24).prop_map(Op::Unregister),
    ]
}

proptest! {
    /// The registry behaves like an ordered list of distinct keys.
    #[test]
    fn matches_a_model(ops in proptest::collection::vec(op(), 0..200)) {
        let mut r = Registry::new();
        let mut model: Vec<(u8, u32)> = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            let n = n as u32;
            match op {
                Op::Register(k) => {
                    let want = if model.iter().any(|(m, _)| *m == k) {
                        Err(RegistryError::Busy)
                    } else if model.len() == MAX_IMPORTERS {
                        Err(RegistryError::Full)
                    } else {
                        model.push((k, n));
                        Ok(())
                    };
                    prop_assert_eq!(r.register(k, n), want);
                }
                Op::Unregister(k) => {
                    let want = match model.iter().position(|(m, _)| *m == k) {
                        Some(i) => Ok(model.remove(i).1),
                        None => Err(RegistryError::NotFound),
                    };
                    prop_assert_eq!(r.unregister(k), want);
                }
            }
            let seen: Vec<(u8, u32)> = r.iter().map(|(k, v)| (k, *v)).collect();
            prop_assert_eq!(&seen, &model);
            prop_assert_eq!(r.len(), model.len());
            for k in 0u8..24 {
                prop_assert_eq!(r.contains(k), model.iter().any(|(m, _)| *m == k));
            }
        }
    }
}
