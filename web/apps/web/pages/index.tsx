import { useAuthRedirect } from '../components/AppProvider';
import { Splash } from '../components/Splash';
import { useRouter } from 'next/router';
import { useEffect } from 'react';

/** `/app/`: on to the chats or the login form. */
export default function Home() {
  const status = useAuthRedirect('signed_out');
  const router = useRouter();
  useEffect(() => {
    if (status === 'signed_out') void router.replace('/login');
  }, [status, router]);
  return <Splash />;
}
