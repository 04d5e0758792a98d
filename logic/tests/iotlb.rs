// SPDX-License-Identifier: GPL-2.0
//! The IOTLB against a model: a flush drops exactly its range.

use kvm_tdp_fd_logic::iotlb::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn e(gfn: u64) -> Entry {
    Entry {
        gfn,
        pfn: gfn + 1000,
        writable: gfn % 2 == 0,
        token: (),
    }
}

#[test]
fn flush_exact_range() {
    let mut t = Iotlb::with_slots(vec![None; IOTLB_SIZE]);
    for gfn in 0x40000..0x40010 {
        t.insert(e(gfn));
    }
    assert_eq!(t.flush(0x4000_3000, 0x2000), 2);
    assert!(t.lookup(0x40002).is_some());
    assert!(t.lookup(0x40003).is_none());
    assert!(t.lookup(0x40004).is_none());
    assert!(t.lookup(0x40005).is_some());
    // A partial page still covers it.
    assert_eq!(t.flush(0x4000_5fff, 1), 1);
    assert_eq!(t.flush(0, 0), 0);
    assert_eq!(t.flush(0, u64::MAX), 13);
    assert!(t.is_empty());
    // A range running to the top of the address space.
    t.insert(e(u64::MAX >> 12));
    assert_eq!(t.flush(u64::MAX - 0xfff, 0x1000), 1);
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u64),
    Flush(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..2048).prop_map(Op::Insert),
        (0u64..2048, 0u64..64).prop_map(|(g, n)| Op::Flush(g << 12, n << 12)),
        Just(Op::Flush(0, u64::MAX)),
    ]
}

proptest! {
    #[test]
    fn behaves_like_a_direct_mapped_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut t = Iotlb::with_slots(vec![None; IOTLB_SIZE]);
        let mut model: HashMap<usize, Entry> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(g) => {
                    t.insert(e(g));
                    model.insert((g as usize) % IOTLB_SIZE, e(g));
                }
                Op::Flush(start, size) => {
                    let whole = start == 0 && size == u64::MAX;
                    let before = model.len();
                    model.retain(|_, v| {
                        let addr = v.gfn << 12;
                        !(size != 0 && (whole || (addr + 0xfff >= start && addr < start + size)))
                    });
                    prop_assert_eq!(t.flush(start, size), (before - model.len()) as u64);
                }
            }
            prop_assert_eq!(t.len(), model.len());
            for v in model.values() {
                prop_assert_eq!(t.lookup(v.gfn), Some(*v));
            }
        }
    }
}
