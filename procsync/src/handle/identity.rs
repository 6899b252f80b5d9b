//! An object's identity as a plain number, for code that must key a map by object
//! rather than compare two handles ([`Handle::same_object`]): procsync-tokio serves
//! every object from one reactor, whichever handle a wait came through.
//!
//! It owns nothing and must not touch shared memory: the number is the object's id,
//! read once when the object was mapped.

use super::core::Handle;

impl Handle {
    /// A number naming this handle's object: equal for every handle of one object, in
    /// this process and in others (it is the random id written when the object was
    /// created), different for distinct objects (64 random bits). `same_object(a, b)`
    /// is `a.object_id() == b.object_id()`. Not a handle value: nothing can be opened
    /// or duplicated by it.
    pub fn object_id(&self) -> u64 {
        self.obj.id
    }
}

#[cfg(test)]
mod tests {
    use crate::handle::core::Handle;
    use crate::handle::vocab::{Access, CreateOptions};
    use crate::obj::{ObjectKind, ObjectSpec};
    use crate::test_root::TestRoot;

    #[test]
    fn one_object_one_id_whichever_handle() {
        let _root = TestRoot::new();
        let spec = ObjectSpec::Event {
            manual: false,
            initial: false,
        };
        let (a, _) = Handle::create(spec, "Local\\identity-a", &CreateOptions::default()).unwrap();
        let (b, _) = Handle::create(spec, "Local\\identity-b", &CreateOptions::default()).unwrap();
        let a2 = Handle::open(ObjectKind::Event, "Local\\identity-a", Access::ALL, false).unwrap();
        let a3 = a.duplicate(None).unwrap();
        let (u, _) = Handle::create(spec, "", &CreateOptions::default()).unwrap();
        assert_eq!(a.object_id(), a2.object_id(), "opened by name");
        assert_eq!(a.object_id(), a3.object_id(), "duplicated");
        assert_ne!(a.object_id(), b.object_id());
        assert_ne!(a.object_id(), u.object_id());
        assert_eq!(a.same_object(&b), a.object_id() == b.object_id());
    }
}
